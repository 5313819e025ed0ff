"""Where the bytes of a block go: see README.md."""
import json, subprocess, ipaddress, struct, sys
recs=[json.loads(l) for l in open(sys.argv[2] if len(sys.argv) > 2 else '/tmp/day.ndjson')]
recs.sort(key=lambda r:r['ts'])
def zs(b, lvl=3):
    return len(subprocess.run(['zstd','-%d'%lvl,'-c','-q'],input=b,capture_output=True).stdout)
def varint(v):
    out=bytearray()
    while v>=0x80: out.append((v&0x7f)|0x80); v>>=7
    out.append(v); return bytes(out)
B=int(sys.argv[1]) if len(sys.argv)>1 else 4096
tot={}
nb=0
for s in range(0,len(recs),B):
    blk=recs[s:s+B]; nb+=1
    strs={}; ips={}
    req=[];tgt=[];ip=[]
    for r in blk:
        for h,col in ((r['requester'],req),(r['target'],tgt)):
            if h not in strs: strs[h]=len(strs)
            col.append(strs[h])
        a=ipaddress.ip_address(r['ip']).packed
        if a not in ips: ips[a]=len(ips)
        ip.append(ips[a])
    ws=2 if len(strs)<=65536 else 3
    cols={'strings':b''.join(bytes([len(h)])+h.encode() for h in strs),
          'ips':b''.join(bytes([len(a)])+a for a in ips),
          'ts':b''.join(varint(blk[i]['ts']-blk[i-1]['ts']) if i else varint(blk[0]['ts']) for i in range(len(blk))),
          'req':b''.join(v.to_bytes(ws,'little') for v in req),
          'tgt':b''.join(v.to_bytes(ws,'little') for v in tgt),
          'ipid':b''.join(v.to_bytes(2,'little') for v in ip),
          'flags':bytes(r['service'] for r in blk)+bytes(int(r['result']) for r in blk)}
    for k,v in cols.items(): tot[k]=tot.get(k,0)+zs(v)
    if nb>=8: break
n=min(len(recs),8*B)
print("block",B,"records",n, {k:round(v/n,2) for k,v in tot.items()}, "sum",round(sum(tot.values())/n,2))
