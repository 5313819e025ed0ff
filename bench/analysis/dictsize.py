"""Size of a segment-wide dictionary layout: see README.md."""
import json, subprocess, ipaddress, collections, sys
recs=[json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else '/tmp/day.ndjson')]
n=len(recs)
def zs(b, lvl=3):
    return len(subprocess.run(['zstd','-%d'%lvl,'-c','-q'],input=b,capture_output=True).stdout)
hc=collections.Counter(); ic=collections.Counter()
for r in recs:
    hc[r['requester']]+=1; hc[r['target']]+=1; ic[ipaddress.ip_address(r['ip']).packed]+=1
hs=sorted(hc); ipsorted=sorted(ic)
print("records",n,"distinct handles",len(hs),"distinct ips",len(ipsorted))
# front coded sorted
def fc(lst):
    out=bytearray(); prev=b''
    for s in lst:
        s=s if isinstance(s,bytes) else s.encode()
        k=0
        while k<min(len(s),len(prev)) and s[k]==prev[k]: k+=1
        out+=bytes([k,len(s)-k])+s[k:]; prev=s
    return bytes(out)
print("handles sorted plain zstd3 B/rec", round(zs(b''.join(bytes([len(h)])+h.encode() for h in hs))/n,2))
print("handles front-coded zstd3 B/rec", round(zs(fc(hs))/n,2), "zstd19", round(zs(fc(hs),19)/n,2))
print("ips front-coded zstd3 B/rec", round(zs(fc(ipsorted))/n,2))
# id columns with frequency-rank ids, blocks of 4096
rank={h:i for i,(h,_) in enumerate(hc.most_common())}
irank={a:i for i,(a,_) in enumerate(ic.most_common())}
def varint(v):
    out=bytearray()
    while v>=0x80: out.append((v&0x7f)|0x80); v>>=7
    out.append(v); return bytes(out)
for B in (1024,4096):
  t={'req':0,'tgt':0,'ip':0}
  for s in range(0,n,B):
    blk=recs[s:s+B]
    t['req']+=zs(b''.join(rank[r['requester']].to_bytes(3,'little') for r in blk))
    t['tgt']+=zs(b''.join(rank[r['target']].to_bytes(3,'little') for r in blk))
    t['ip']+=zs(b''.join(irank[ipaddress.ip_address(r['ip']).packed].to_bytes(3,'little') for r in blk))
  print("block",B,{k:round(v/n,2) for k,v in t.items()})
