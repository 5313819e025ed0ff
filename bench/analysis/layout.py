"""What a record-readable, address-clustered compact layout would cost on
disk, against today's (docs/ARCHITECTURE.md, "Lookup latency").

Usage: python3 bench/analysis/layout.py DAY.csv
DAY.csv is one day of records as `logtool scan -o csv` prints them, e.g.
  logtool scan STORE --since 2026-10-14T00:00:00Z \\
      --until 2026-10-15T00:00:00Z -o csv --now 2026-11-01T01:00:00Z
(a day of the 10M bench store kept with `qlbench --keep`). Needs python3
and the zstd command (scripts/setup-debian.sh --bench).

Today (A): records in time order, blocks of 2,048 records holding ids in
byte planes under zstd -3, Rice-coded times; dictionaries front-coded in
zstd pages of 256 keys; postings name 2,048-record blocks.
Proposed (B): records in (address, time) order, so an address's records,
and most of its accounts' (1-3 home addresses each), lie together; mini
blocks of 64 records bit-coded without zstd, so one record is read by
decoding at most 63 others (about a microsecond), never a zstd frame;
dictionaries readable key by key (groups of 16 front-coded keys, digits
in 4 bits, email characters in 6); postings name mini blocks, and an
address's postings are its run. Every figure is bytes per record of this
day; the codes are exact (real Huffman lengths, real Rice parameters per
block), headers and directories included as noted. Not modelled: LMDB's
page overhead on the postings (the same in both), the class filters
(0.57 B/record today, unchanged)."""
import collections
import csv
import datetime
import heapq
import ipaddress
import math
import subprocess
import sys


def zlen(b, level=3):
    return len(subprocess.run(['zstd', '-%d' % level, '-c', '-q'], input=b,
                              capture_output=True, check=True).stdout)


def huffman_lengths(counts):
    """Code length of each symbol of an optimal prefix code."""
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    h = [(c, i, (s,)) for i, (s, c) in enumerate(counts.items())]
    heapq.heapify(h)
    depth = collections.Counter()
    tie = len(h)
    while len(h) > 1:
        c1, _, s1 = heapq.heappop(h)
        c2, _, s2 = heapq.heappop(h)
        for s in s1 + s2:
            depth[s] += 1
        heapq.heappush(h, (c1 + c2, tie, s1 + s2))
        tie += 1
    return depth


def rice_bits(gaps):
    """Bits of the gaps Rice-coded with the best k, plus 6 for k."""
    if not gaps:
        return 0
    return 6 + min(sum((g >> k) + 1 + k for g in gaps) for k in range(40))


def elias_gamma(v):  # v >= 1
    return 2 * v.bit_length() - 1


def ef_bits(n, universe):
    """Elias-Fano: n sorted values below universe."""
    if n == 0:
        return 0
    low = max(0, int(math.floor(math.log2(universe / n)))) if universe > n \
        else 0
    return n * (2 + low)


def ts_us(s):
    d = datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ' if '.' in s
                                   else '%Y-%m-%dT%H:%M:%SZ')
    return int((d - datetime.datetime(1970, 1, 1)).total_seconds()) * \
        1000000 + d.microsecond


rows = []
for r in csv.DictReader(open(sys.argv[1])):
    rows.append((ts_us(r['ts']), r['requester'], r['target'],
                 ipaddress.ip_address(r['ip']).packed if ':' in r['ip']
                 else b'\0' * 10 + b'\xff\xff' +
                 ipaddress.ip_address(r['ip']).packed,
                 int(r['service']) * 2 + int(r['result'])))
n = len(rows)
day0 = min(r[0] for r in rows)
hc = collections.Counter()
ic = collections.Counter()
for r in rows:
    hc[r[1]] += 1
    hc[r[2]] += 1
    ic[r[3]] += 1


def class_ids(counter):
    """Ids as the compactor gives them: frequency class (bit length of
    the count) from the busiest, then key order."""
    keys = sorted(counter, key=lambda k: (-counter[k].bit_length(), k))
    return {k: i for i, k in enumerate(keys)}, keys


hid, hkeys = class_ids(hc)
iid_cls, ikeys_cls = class_ids(ic)
ikeys = sorted(ic)
iid_key = {k: i for i, k in enumerate(ikeys)}
wh = (len(hkeys).bit_length() + 7) // 8
wi = (len(ikeys).bit_length() + 7) // 8
print('records %d, distinct handles %d, distinct addresses %d' %
      (n, len(hkeys), len(ikeys)))


def per_rec(bits_or_bytes, bits=False):
    return (bits_or_bytes / 8 if bits else bits_or_bytes) / n


def planes(vals, w):
    return b''.join(bytes((v >> (8 * j)) & 255 for v in vals)
                    for j in range(w))


def zstd_blocks(order, iid, runs, B=2048):
    """Id blocks as today: time gaps Rice-coded (with runs, each address
    run starts again from the day's start), ids in byte planes,
    service/result bytes, all but the times under zstd -3."""
    tbits = zbytes = 0
    for s in range(0, n, B):
        blk = order[s:s + B]
        gaps, prev = [], None
        for r in blk:
            if prev is None or (runs and r[3] != prev[3]):
                tbits += 37  # offset in the day, fixed width
            else:
                gaps.append(r[0] - prev[0])
            prev = r
        tbits += rice_bits(gaps)
        zbytes += zlen(planes([hid[r[1]] for r in blk], wh) +
                       planes([hid[r[2]] for r in blk], wh) +
                       planes([iid[r[3]] for r in blk], wi) +
                       bytes(r[4] for r in blk))
    return per_rec(tbits, True), per_rec(zbytes)


by_time = sorted(rows, key=lambda r: r[0])
by_addr = sorted(rows, key=lambda r: (r[3], r[0]))
t, z = zstd_blocks(by_time, iid_cls, False)
ids_a = t + z
print('A  time order, zstd id blocks of 2048: time %.2f + ids %.2f = %.2f'
      % (t, z, t + z))
t, z = zstd_blocks(by_addr, iid_key, True)
print('   (address, time) order, same blocks: time %.2f + ids %.2f = %.2f'
      % (t, z, t + z))

# ---- B: bit-coded mini blocks of 64 records ----
M = 64
hcls = {k: hc[k].bit_length() for k in hkeys}
hcls_size = collections.Counter(hcls.values())  # keys per class


def class_code_lengths(field):
    """Per-record code: Huffman over the key's class + its offset in the
    class at fixed width."""
    cc = collections.Counter(hcls[r[field]] for r in rows)
    hl = huffman_lengths(cc)
    return {c: hl[c] + max(0, (hcls_size[c] - 1).bit_length())
            for c in cc}


req_len = class_code_lengths(1)
tgt_len = class_code_lengths(2)
sr_len = huffman_lengths(collections.Counter(r[4] for r in rows))
bits = collections.Counter()
mini_of = []  # mini block of each record in by_addr
for s in range(0, n, M):
    blk = by_addr[s:s + M]
    bits['header'] += 32 + 8  # bit offset in the segment, Rice k
    gaps, prev = [], None
    for r in blk:
        if prev is None or r[3] != prev[3]:
            bits['time'] += 37  # offset in the day, fixed width
            if prev is None:
                bits['addr'] += max(1, (len(ikeys) - 1).bit_length())
            else:
                bits['addr'] += 1 + elias_gamma(iid_key[r[3]] -
                                                iid_key[prev[3]])
        else:
            gaps.append(r[0] - prev[0])
            bits['addr'] += 1
        # requester: 1 bit "same as the previous record's", else its code
        if prev is not None and r[3] == prev[3] and r[1] == prev[1]:
            bits['requester'] += 1
        else:
            bits['requester'] += 1 + req_len[hcls[r[1]]]
        bits['target'] += tgt_len[hcls[r[2]]]
        bits['svc+result'] += sr_len[r[4]]
        prev = r
        mini_of.append(s // M)
    bits['time'] += rice_bits(gaps)
tot = sum(bits.values())
print('B  (address, time) order, bit-coded mini blocks of %d: %s = %.2f' %
      (M, ', '.join('%s %.2f' % (k, per_rec(v, True))
                    for k, v in bits.items()), per_rec(tot, True)))
idbits_b = tot

# ---- dictionaries ----
DOM = [d for d, _ in collections.Counter(
    k.split('@')[1] for k in hkeys if '@' in k).most_common(31)]


def key_bits(k, prev):
    """A handle front-coded against the previous key of its group (None:
    the group's first, stored whole): 1 bit phone/email, then
    phone: 4-bit shared prefix, 4-bit suffix length, 4 bits a digit;
    email: 5-bit domain (or 31 + 6-bit length + 8 bits a character),
    4-bit shared prefix of the local part, 4-bit suffix length, 6 bits a
    character ([a-z0-9._-])."""
    if k.startswith('+'):
        d = k[1:]
        p = 0
        if prev and prev.startswith('+'):
            while p < min(len(d), len(prev) - 1, 15) and d[p] == prev[1 + p]:
                p += 1
        return 1 + 8 + 4 * (len(d) - p)
    local, dom = k.split('@')
    b = 1 + (5 if dom in DOM else 5 + 6 + 8 * len(dom))
    p = 0
    if prev and '@' in prev:
        pl = prev.split('@')[0]
        while p < min(len(local), len(pl), 15) and local[p] == pl[p]:
            p += 1
    return b + 8 + 6 * (len(local) - p)


def groups_bits(keys, kb, G=16):
    total = 0
    for s in range(0, len(keys), G):
        prev = None
        for k in keys[s:s + G]:
            total += kb(k, prev)
            prev = k
        total += 32  # the group's offset (directory)
    return total


def addr_bits(k, prev):
    p = 0
    if prev:
        while p < 15 and k[p] == prev[p]:
            p += 1
    return 4 + 8 * (16 - p)


hdict = groups_bits(hkeys, key_bits)
idict = groups_bits(ikeys, addr_bits)


def fc_pages(keys, enc, P=256):
    total = 0
    for s in range(0, len(keys), P):
        out, prev = bytearray(), b''
        for k in keys[s:s + P]:
            kb = enc(k)
            p = 0
            while p < min(len(kb), len(prev), 255) and kb[p] == prev[p]:
                p += 1
            out += bytes([p, len(kb) - p]) + kb[p:]
            prev = kb
        total += zlen(bytes(out)) + 40
    return total


today_h = fc_pages(hkeys, lambda k: k.encode())
today_i = fc_pages(ikeys_cls, lambda k: k)
print('dictionaries: today (zstd pages of 256, class order) handles %.2f '
      '+ addresses %.2f = %.2f' % (per_rec(today_h), per_rec(today_i),
                                   per_rec(today_h + today_i)))
print('              key-readable (groups of 16) handles %.2f + addresses '
      '%.2f = %.2f' % (per_rec(hdict, True), per_rec(idict, True),
                       per_rec(hdict + idict, True)))

# ---- postings ----


def postings(order, unit_of, universe, fields):
    lists = collections.defaultdict(set)
    for i, r in enumerate(order):
        for f in fields:
            lists[(f, r[f])].add(unit_of[i])
    return sum(ef_bits(len(v), universe) for v in lists.values())


blk_of = [i // 2048 for i in range(n)]
pa = postings(by_time, blk_of, (n + 2047) // 2048, (1, 2, 3))
nmini = (n + M - 1) // M
pb_h = postings(by_addr, mini_of, nmini, (1, 2))
# an address's records are one run: its first record's index
pb_i = ef_bits(len(ikeys), n)
print('postings (Elias-Fano): A by 2048-record block, three roles %.2f; '
      'B by mini block: requester+target %.2f, addresses as runs %.2f' %
      (per_rec(pa, True), per_rec(pb_h, True), per_rec(pb_i, True)))
print('ids + dictionaries + postings: A %.2f, B %.2f' % (
    ids_a + per_rec(today_h + today_i) + per_rec(pa, True),
    per_rec(idbits_b + hdict + idict + pb_h + pb_i, True)))
