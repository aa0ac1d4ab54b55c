#!/usr/bin/python3
"""Decodes MS-WMIO EncodingUnits with impacket (Debian's python3-impacket) and prints every
property value, for test_wmio to compare with its own decoder.

Input: a file of records, each a 4-octet little-endian length and one EncodingUnit.
Output, per object:
  O <class name>
  P <name> <cim type> N                       (impacket has no value: NULL)
  P <name> <cim type> V <count> ,<hex>[,<hex>...]   (each value as hex of its UTF-8 text)
Values are rendered as the C++ decoder renders them where impacket's Python value allows it
(True/False -> true/false, char16 code -> the character); the rest is str(value).
"""
import struct
import sys

from impacket.dcerpc.v5.dcom.wmi import ENCODING_UNIT

CIM_BOOLEAN, CIM_CHAR16, CIM_OBJECT = 11, 103, 13


def text(base, v):
    if base == CIM_BOOLEAN:
        if isinstance(v, str):
            return 'true' if v == 'True' else 'false'
        return 'true' if v else 'false'
    if base == CIM_CHAR16:
        return chr(v)
    if base == CIM_OBJECT:
        block = v['ObjectBlock']
        block.parseObject()
        return '<object %s>' % block.ctCurrent['name'].split(' ')[0]
    return str(v)


def main():
    data = open(sys.argv[1], 'rb').read()
    out = []
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from('<I', data, pos)
        unit = ENCODING_UNIT(data[pos + 4:pos + 4 + n])
        pos += 4 + n
        block = unit['ObjectBlock']
        block.parseObject()
        cur = block.ctCurrent
        out.append('O %s' % cur['name'].split(' ')[0])
        for name, prop in cur['properties'].items():
            ptype = prop['type'] & ~0x4000
            base = ptype & ~0x2000
            v = prop['value']
            if v is None:
                out.append('P %s %d N' % (name, ptype))
                continue
            items = v if ptype & 0x2000 else [v]
            hexes = [text(base, x).encode('utf-8').hex() for x in items]
            out.append('P %s %d V %d %s' % (name, ptype, len(hexes), ''.join(',' + h for h in hexes)))
    sys.stdout.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
