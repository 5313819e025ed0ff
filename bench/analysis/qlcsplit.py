"""Where the bytes of a compact segment's id blocks go, and what
random-access (bit-packed, fixed-width) id columns would cost instead.

Usage: python3 bench/analysis/qlcsplit.py STORE [SEGMENT_INDEX [FIRST LAST]]
Reads the SEGMENT_INDEX-th .qlc of STORE/seg (default 5, a full day of
the 10M stream), takes its id blocks FIRST..LAST (default 10..30), splits
each decompressed block into its columns (docs/FORMAT.md §5.9) and
compresses each column alone with the zstd command at level 3. Needs
python3 and zstd (scripts/setup-debian.sh --bench). See README.md."""
import glob, math, struct, subprocess, sys


def zlen(b, level=3):
    return len(subprocess.run(['zstd', '-%d' % level, '-c', '-q'], input=b,
                              capture_output=True, check=True).stdout)


def unzstd(b):
    return subprocess.run(['zstd', '-d', '-c', '-q'], input=b,
                          capture_output=True, check=True).stdout


def varint(d, o):
    v = s = 0
    while True:
        c = d[o]
        o += 1
        v |= (c & 0x7f) << s
        s += 7
        if c < 0x80:
            return v, o


store = sys.argv[1]
seg = int(sys.argv[2]) if len(sys.argv) > 2 else 5
first = int(sys.argv[3]) if len(sys.argv) > 3 else 10
last = int(sys.argv[4]) if len(sys.argv) > 4 else 30
path = sorted(glob.glob(store + '/seg/*.qlc'))[seg]
d = open(path, 'rb').read()
off, blocks = 64, []
while off + 40 <= len(d):
    tag = d[off:off + 4]
    clen = struct.unpack_from('<I', d, off + 4)[0]
    if tag == b'QLSL':
        break
    if tag == b'QLBK':
        blocks.append(d[off + 40:off + 40 + clen])
    off += 40 + clen
nh, ni = struct.unpack_from('<II', d, off + 40 + 40)
tot, nrec = {}, 0
for comp in blocks[first:last]:
    raw = unzstd(comp)
    n, wh, wi = struct.unpack_from('<I', raw, 0)[0], raw[4], raw[5]
    o = start = 8
    if raw[6] == 1:  # Rice-coded gaps (segment version 3): ends where
        o = len(raw) - n * (2 * wh + wi + 2)  # the id columns begin
    else:            # varints (segment version 2)
        for _ in range(n):
            _, o = varint(raw, o)
    cols = {'time': raw[start:o]}
    for name, w in (('requester', wh), ('target', wh), ('address', wi)):
        cols[name] = raw[o:o + n * w]
        o += n * w
    cols['service+result'] = raw[o:o + 2 * n]
    for k, v in cols.items():
        tot[k] = tot.get(k, 0) + zlen(v)
    tot['whole block (as stored)'] = tot.get('whole block (as stored)', 0) \
        + len(comp)
    nrec += n
print('%s: %d id blocks, %d handles, %d addresses; blocks %d-%d, %d records'
      % (path, len(blocks), nh, ni, first, last - 1, nrec))
for k, v in tot.items():
    print('  %-24s %5.2f B/record (zstd -3, column alone)' % (k, v / nrec))
bh, bi = math.ceil(math.log2(nh)), math.ceil(math.log2(ni))
print('  bit-packed ids instead: %d+%d+%d bits = %.2f B/record, plus 2 bits '
      'of service and result' % (bh, bh, bi, (2 * bh + bi) / 8))
