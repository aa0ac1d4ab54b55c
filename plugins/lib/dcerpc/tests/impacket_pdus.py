# The other side of test_dcerpc's cross-checks: impacket's rpcrt/epm/ntlm (run with
# /usr/bin/python3) builds the same PDUs the C++ side builds, parses the C++ side's PDUs, and
# seals with NTLM session keys the C++ side also knows.
#   impacket_pdus.py check | build | parse (lines "name hex" on stdin)
#   impacket_pdus.py seal KEY_HEX FLAGS CALL_ID OPNUM LEVEL REQUEST_STUB_HEX RESPONSE_STUB_HEX
import struct
import sys

from impacket import ntlm
from impacket.dcerpc.v5 import epm
from impacket.dcerpc.v5.rpcrt import (CtxItem, MSRPCBind, MSRPCBindAck, MSRPCHeader,
                                      MSRPCRequestHeader, MSRPCRespHeader, SEC_TRAILER)
from impacket.uuid import bin_to_uuidtup, uuidtup_to_bin

SAMR = ('12345778-1234-abcd-ef00-0123456789ac', '1.0')
LSARPC = ('12345778-1234-abcd-ef00-0123456789ab', '0.0')
NDR = ('8a885d04-1ceb-11c9-9fe8-08002b104860', '2.0')
OBJECT = '01234567-89ab-cdef-0123-456789abcdef'
AUTH_VALUE = bytes(range(40))


def trailer(level, pad, ctx):
    t = SEC_TRAILER()
    t['auth_type'] = 10
    t['auth_level'] = level
    t['auth_pad_len'] = pad
    t['auth_ctx_id'] = ctx
    return t.getData()


def bind(ptype, call_id, assoc, ctx_id, iface, auth):
    b = MSRPCBind()
    b['max_tfrag'] = 5840
    b['max_rfrag'] = 5840
    b['assoc_group'] = assoc
    item = CtxItem()
    item['ContextID'] = ctx_id
    item['TransItems'] = 1
    item['AbstractSyntax'] = uuidtup_to_bin(iface)
    item['TransferSyntax'] = uuidtup_to_bin(NDR)
    b.addCtxItem(item)
    p = MSRPCHeader()
    p['type'] = ptype
    p['flags'] = 3
    p['call_id'] = call_id
    p['pduData'] = b.getData()
    if auth:
        p['sec_trailer'] = trailer(6, 0, 0)
        p['auth_data'] = AUTH_VALUE
    return p.get_packet()


def build():
    out = {}
    out['bind'] = bind(11, 1, 0, 0, SAMR, True)
    out['alter_context'] = bind(14, 2, 0x1234, 1, LSARPC, False)
    r = MSRPCRequestHeader()
    r['flags'] = 3
    r['call_id'] = 7
    r['ctx_id'] = 1
    r['op_num'] = 57
    r['alloc_hint'] = 32
    r['pduData'] = bytes(range(32))
    out['request'] = r.get_packet()
    r = MSRPCRequestHeader()
    r['flags'] = 3 | 0x80
    r['call_id'] = 8
    r['op_num'] = 3
    r['alloc_hint'] = 8
    r['uuid'] = uuidtup_to_bin((OBJECT, '0.0'))[:16]
    r['pduData'] = bytes(8)
    out['request_object'] = r.get_packet()
    a = MSRPCBindAck()
    a['type'] = 12
    a['flags'] = 3
    a['call_id'] = 1
    a['max_tfrag'] = 4280
    a['max_rfrag'] = 4280
    a['assoc_group'] = 0x5eed
    a['SecondaryAddr'] = b'49154'
    a['SecondaryAddrLen'] = 6
    a['ctx_num'] = 1
    a['ctx_items'] = struct.pack('<HH', 0, 0) + uuidtup_to_bin(NDR)
    a['sec_trailer'] = trailer(6, 0, 0)
    a['auth_data'] = AUTH_VALUE
    # impacket reads bind_acks but does not write them: its frag_len counts no body and its
    # auth_len stays 0; both are set here.
    ack = bytearray(a.getData())
    ack[8:12] = struct.pack('<HH', len(ack), len(AUTH_VALUE))
    out['bind_ack'] = bytes(ack)
    f = MSRPCRespHeader()
    f['type'] = 3
    f['flags'] = 3
    f['call_id'] = 9
    f['pduData'] = struct.pack('<LL', 0x1c010003, 0)
    out['fault'] = f.get_packet()
    # ept_map for SAMR over TCP, as epm.hept_map builds it.
    tower = epm.EPMTower()
    interface = epm.EPMRPCInterface()
    interface['InterfaceUUID'] = uuidtup_to_bin(SAMR)[:16]
    interface['MajorVersion'] = 1
    interface['MinorVersion'] = 0
    rep = epm.EPMRPCDataRepresentation()
    rep['DataRepUuid'] = uuidtup_to_bin(NDR)[:16]
    rep['MajorVersion'] = 2
    rep['MinorVersion'] = 0
    prot = epm.EPMProtocolIdentifier()
    prot['ProtIdentifier'] = epm.FLOOR_RPCV5_IDENTIFIER
    port = epm.EPMPortAddr()
    port['IpPort'] = 0
    host = epm.EPMHostAddr()
    host['Ip4addr'] = b'\0\0\0\0'
    tower['NumberOfFloors'] = 5
    tower['Floors'] = (interface.getData() + rep.getData() + prot.getData() + port.getData() +
                       host.getData())
    out['tower'] = tower.getData()
    req = epm.ept_map()
    req['max_towers'] = 4
    req['map_tower']['tower_length'] = len(tower)
    req['map_tower']['tower_octet_string'] = tower.getData()
    req.fields['obj'].fields['ReferentID'] = 1
    req.fields['map_tower'].fields['ReferentID'] = 2
    out['ept_map'] = req.getData()
    for k, v in out.items():
        print(k, v.hex())


def parse():
    for line in sys.stdin:
        name, data = line.split()
        data = bytes.fromhex(data)
        h = MSRPCHeader(data)
        f = [name, 'type=%d' % h['type'], 'flags=%d' % h['flags'], 'call_id=%d' % h['call_id'],
             'frag_len=%d' % h['frag_len'], 'auth_len=%d' % h['auth_len']]
        if h['auth_len']:
            t = SEC_TRAILER(h['sec_trailer'])
            f += ['auth_type=%d' % t['auth_type'], 'auth_level=%d' % t['auth_level'],
                  'auth_pad=%d' % t['auth_pad_len'], 'auth_ctx=%d' % t['auth_ctx_id'],
                  'auth_value=%s' % h['auth_data'].hex()]
        if h['type'] in (11, 14):
            b = MSRPCBind(h['pduData'])
            item = CtxItem(b['ctx_items'])
            f += ['max_tfrag=%d' % b['max_tfrag'], 'max_rfrag=%d' % b['max_rfrag'],
                  'assoc_group=%d' % b['assoc_group'], 'ctx_num=%d' % b['ctx_num'],
                  'ctx_id=%d' % item['ContextID'],
                  'abstract=%s/%s' % bin_to_uuidtup(item['AbstractSyntax']),
                  'transfer=%s/%s' % bin_to_uuidtup(item['TransferSyntax'])]
        elif h['type'] == 0:
            r = MSRPCRequestHeader(data)
            f += ['alloc_hint=%d' % r['alloc_hint'], 'ctx_id=%d' % r['ctx_id'],
                  'opnum=%d' % r['op_num'], 'stub=%s' % r['pduData'].hex()]
            if r['flags'] & 0x80:
                f.append('object=%s' % bin_to_uuidtup(r['uuid'] + b'\0\0\0\0')[0])
        elif h['type'] == 16:
            f.append('auth3_pad=%d' % len(h['pduData']))
        print(' '.join(f))


def seal(key, flags, call_id, opnum, level, request_stub, response_stub):
    """The request the client sends first after AUTH3 (sequence 0), and the response the server
    sends to it (its sequence 0), both sealed (level 6) or signed (level 5) by impacket."""
    sides = {}
    for side in ('Client', 'Server'):
        sign_key = ntlm.SIGNKEY(flags, key, side)
        seal_key = ntlm.SEALKEY(flags, key, side)
        sides[side] = (sign_key, seal_key, ntlm.ARC4.new(seal_key).encrypt)

    def protect(packet, stub, side):
        pad = (16 - len(stub) % 16) % 16
        packet['pduData'] = stub + bytes(pad)
        packet['sec_trailer'] = trailer(level, pad, 0)
        packet['auth_data'] = bytes(16)
        sign_key, seal_key, handle = sides[side]
        to_sign = packet.get_packet()[:-16]
        if level == 6:
            sealed, sig = ntlm.SEAL(flags, sign_key, seal_key, to_sign, packet['pduData'], 0, handle)
            packet['pduData'] = sealed
        else:
            sig = ntlm.SIGN(flags, sign_key, to_sign, 0, handle)
        packet['auth_data'] = sig.getData()
        return packet.get_packet()

    r = MSRPCRequestHeader()
    r['flags'] = 3
    r['call_id'] = call_id
    r['op_num'] = opnum
    r['alloc_hint'] = len(request_stub)
    print('request', protect(r, request_stub, 'Client').hex())
    r = MSRPCRespHeader()
    r['flags'] = 3
    r['call_id'] = call_id
    r['alloc_hint'] = len(response_stub)
    print('response', protect(r, response_stub, 'Server').hex())


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'check':
        pass
    elif cmd == 'build':
        build()
    elif cmd == 'parse':
        parse()
    elif cmd == 'seal':
        a = sys.argv[2:]
        seal(bytes.fromhex(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), bytes.fromhex(a[5]),
             bytes.fromhex(a[6]))
