#!/usr/bin/python3
"""The impacket side of bench/wmio/run.sh: decodes every EncodingUnit of FILE (4-octet length +
unit each) as impacket's IWbemClassObject does (ENCODING_UNIT, then OBJECT_BLOCK.parseObject(),
which parses the class part, every property's PropertyInfo and qualifiers, and every instance
value), reads every property value, again and again for at least 2 s. Prints one line:
impacket objects=<n> values=<property values per pass> wall_s=<s> cpu_s=<process s>"""
import struct
import sys
import time

from impacket.dcerpc.v5.dcom.wmi import ENCODING_UNIT


def main():
    data = open(sys.argv[1], 'rb').read()
    units = []
    pos = 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from('<I', data, pos)
        units.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    objects = values = passes = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        for u in units:
            block = ENCODING_UNIT(u)['ObjectBlock']
            block.parseObject()
            objects += 1
            for prop in block.ctCurrent['properties'].values():
                v = prop['value']
                if passes == 0 and v is not None:
                    values += len(v) if isinstance(v, list) else 1
        passes += 1
        wall = time.perf_counter() - t0
        if wall >= 2.0:
            break
    cpu = time.process_time() - c0
    print('impacket objects=%d values=%d wall_s=%.6f cpu_s=%.6f' % (objects, values, wall, cpu))


if __name__ == '__main__':
    main()
