#!/usr/bin/python3
"""MS-WMIO object encoding for the WMI/DCOM test peer (wmi_peer.py).

Builds EncodingUnits (MS-WMIO 2.2.1) holding a CIM instance (ObjectFlags
instance + Decoration, then the class part of its class followed by the
instance part) or a CIM class (ParentClass + CurrentClass, each with an empty
methods part), from plain Python values and CIM type names.

Layout choices (each one is what MS-WMIO 2.2 allows and what impacket's and
plugins/lib/wmio's decoders read):
  * properties are declared in the order given; their ValueTable slots follow
    one another in that order (ValueTableOffset = sum of the sizes before);
  * the PropertyLookupTable is sorted by property name, case-insensitively;
  * every property has a CIMTYPE qualifier ("uint32", "string", "uint64[]" ...),
    a key property also has key = TRUE; the class has dynamic = TRUE;
  * the class part carries no defaults (NdTable "null" bit, slots 0xFF);
  * the instance heap starts with the class name, so no value sits at heap
    offset 0; NULL values have the NdTable "null" bit and a zeroed slot;
  * sint64/uint64 are 8-octet little-endian integers in the ValueTable.
"""
import struct

SIGNATURE = 0x12345678

CIM = {
    'sint8': 16, 'uint8': 17, 'sint16': 2, 'uint16': 18, 'sint32': 3, 'uint32': 19,
    'sint64': 20, 'uint64': 21, 'real32': 4, 'real64': 5, 'boolean': 11,
    'string': 8, 'datetime': 101, 'reference': 102, 'char16': 103, 'object': 13,
}
CIM_ARRAY = 0x2000
SIZES = {16: 1, 17: 1, 2: 2, 18: 2, 103: 2, 11: 2, 3: 4, 19: 4, 4: 4, 20: 8, 21: 8, 5: 8}
PACK = {16: '<b', 17: '<B', 2: '<h', 18: '<H', 103: '<H', 3: '<i', 19: '<I', 4: '<f',
        20: '<q', 21: '<Q', 5: '<d'}
HEAP_TYPES = (8, 101, 102, 13)  # values that live in the heap

# DictionaryReference (MS-WMIO 2.2.80) names used here.
DICT_KEY = 0x80000001
DICT_DYNAMIC = 0x80000007
DICT_CIMTYPE = 0x8000000A


def type_code(name):
    """'uint32' -> 19, 'string[]' -> 0x2008."""
    if name.endswith('[]'):
        return CIM[name[:-2]] | CIM_ARRAY
    return CIM[name]


def slot_size(code):
    if code & CIM_ARRAY:
        return 4
    return SIZES.get(code, 4)


def encoded_string(text):
    """Encoded-String (2.2.78): 8-bit when every character fits, else UTF-16LE."""
    if all(ord(c) < 0x100 for c in text):
        return b'\x00' + text.encode('latin-1') + b'\x00'
    return b'\x01' + text.encode('utf-16le') + b'\x00\x00'


class Heap:
    def __init__(self):
        self.data = bytearray()

    def string(self, text):
        at = len(self.data)
        self.data += encoded_string(text)
        return at

    def raw(self, blob):
        at = len(self.data)
        self.data += blob
        return at

    def encoded(self):
        return struct.pack('<I', len(self.data) | 0x80000000) + bytes(self.data)


def _scalar(code, value):
    if code == 11:
        return struct.pack('<H', 0xFFFF if value else 0)
    if code in (4, 5):
        return struct.pack(PACK[code], float(value))
    if code == 103:
        return struct.pack('<H', ord(str(value)[0]) if str(value) else 0)
    return struct.pack(PACK[code], int(value))


def _value(heap, code, value):
    """The ValueTable slot for a non-NULL value (heap items appended as needed)."""
    base = code & ~CIM_ARRAY
    if code & CIM_ARRAY:
        items = list(value)
        at = heap.raw(struct.pack('<I', len(items)))
        if base in HEAP_TYPES:
            refs_at = heap.raw(b'\0' * 4 * len(items))
            for i, item in enumerate(items):
                ref = heap.string(str(item))
                heap.data[refs_at + 4 * i:refs_at + 4 * i + 4] = struct.pack('<I', ref)
        else:
            heap.raw(b''.join(_scalar(base, v) for v in items))
        return struct.pack('<I', at)
    if base in HEAP_TYPES:
        if isinstance(value, bool):
            value = 'True' if value else 'False'
        return struct.pack('<I', heap.string(str(value)))
    return _scalar(base, value)


def _qualifier(name_ref, qtype, value_bytes, flavor=0):
    return struct.pack('<IBI', name_ref, flavor, qtype) + value_bytes


def _qualifier_set(quals):
    body = b''.join(quals)
    return struct.pack('<I', 4 + len(body)) + body


def nd_length(count):
    return (count * 2 + 7) // 8


class ClassDef:
    """name, [(property name, CIM type name)], key property names."""

    def __init__(self, name, props, keys=(), superclasses=()):
        self.name = name
        self.props = list(props)
        self.keys = {k.lower() for k in keys}
        self.superclasses = list(superclasses)
        self._part = None

    def class_part(self):
        if self._part is None:
            self._part = self._encode_class_part()
        return self._part

    def _encode_class_part(self):
        heap = Heap()
        name_ref = heap.string(self.name)
        n = len(self.props)
        nd = bytearray(nd_length(n))
        table = b''
        lookup = []
        offset = 0
        for order, (pname, tname) in enumerate(self.props):
            code = type_code(tname)
            pname_ref = heap.string(pname)
            tname_ref = heap.string(tname)
            quals = [_qualifier(DICT_CIMTYPE, 8, struct.pack('<I', tname_ref))]
            if pname.lower() in self.keys:
                quals.append(_qualifier(DICT_KEY, 11, struct.pack('<H', 0xFFFF)))
            info = struct.pack('<IHII', code, order, offset, 0) + _qualifier_set(quals)
            info_ref = heap.raw(info)
            lookup.append((pname.lower(), pname_ref, info_ref))
            nd[order // 4] |= 1 << ((order % 4) * 2)  # no default: NULL
            table += b'\xff' * slot_size(code)
            offset += slot_size(code)
        lookup.sort()
        deriv = b''
        for sup in self.superclasses:
            s = encoded_string(sup)
            deriv += s + struct.pack('<I', len(s))
        class_quals = _qualifier_set([_qualifier(DICT_DYNAMIC, 11, struct.pack('<H', 0xFFFF))])
        body = (struct.pack('<I', 4 + len(deriv)) + deriv + class_quals +
                struct.pack('<I', n) + b''.join(struct.pack('<II', a, b) for _, a, b in lookup) +
                bytes(nd) + table + heap.encoded())
        header_len = 4 + 1 + 4 + 4
        return struct.pack('<IBII', header_len + len(body), 0, name_ref, len(nd) + len(table)) + body

    def instance_part(self, row):
        """row: {property name (any case): value or None}."""
        lower = {k.lower(): v for k, v in row.items()}
        heap = Heap()
        name_ref = heap.string(self.name)
        n = len(self.props)
        nd = bytearray(nd_length(n))
        table = b''
        for order, (pname, tname) in enumerate(self.props):
            code = type_code(tname)
            v = lower.get(pname.lower())
            if v is None:
                nd[order // 4] |= 1 << ((order % 4) * 2)
                table += b'\0' * slot_size(code)
            else:
                table += _value(heap, code, v)
        tail = (bytes(nd) + table + struct.pack('<I', 4) + b'\x01' + heap.encoded())
        return struct.pack('<IBI', 4 + 1 + 4 + len(tail), 0, name_ref) + tail


EMPTY_METHODS_PART = struct.pack('<IHHI', 12, 0, 0, 0x80000000)


def empty_class_part():
    body = struct.pack('<I', 4) + struct.pack('<I', 4) + struct.pack('<I', 0) + \
        struct.pack('<I', 0x80000000)
    return struct.pack('<IBII', 13 + len(body), 0, 0xFFFFFFFF, 0) + body


def decoration(server, namespace):
    return encoded_string(server) + encoded_string(namespace)


def instance_block(cls, row, server=None, namespace=None):
    flags = 0x02
    dec = b''
    if server is not None:
        flags |= 0x04
        dec = decoration(server, namespace)
    return bytes([flags]) + dec + cls.class_part() + cls.instance_part(row)


def class_block(cls, server=None, namespace=None):
    flags = 0x01
    dec = b''
    if server is not None:
        flags |= 0x04
        dec = decoration(server, namespace)
    return (bytes([flags]) + dec + empty_class_part() + EMPTY_METHODS_PART +
            cls.class_part() + EMPTY_METHODS_PART)


def encoding_unit(block):
    return struct.pack('<II', SIGNATURE, len(block)) + block
