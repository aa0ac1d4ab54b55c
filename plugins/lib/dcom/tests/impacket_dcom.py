# The other side of test_dcom's cross-checks: impacket's dcomrt and dcom.wmi structures (run with
# /usr/bin/python3) parse the request stubs the C++ side builds, and build the response stubs
# the C++ side decodes.
#   impacket_dcom.py check | build | parse (lines "name hex" on stdin) | seeds DIR
# `seeds` writes the built responses as fuzz_dcom inputs: a first byte choosing the decoder
# (see fuzz_dcom.cpp), then the stub.
import struct
import sys

from impacket.dcerpc.v5 import dcomrt
from impacket.dcerpc.v5.dcom import wmi
from impacket.dcerpc.v5.dtypes import NULL
from impacket.uuid import bin_to_string, string_to_bin

IID_WBEM_CLASS_OBJECT = 'dc12a681-737f-11cf-884d-00aa004b2e24'
CLSID_WBEM_CLASS_OBJECT = '4590f812-1d3a-11d0-891f-00aa004b2e24'
IPID_LOGIN = '00001234-5678-9abc-def0-123456789abc'
IPID_REMUNKNOWN = '0000abcd-0001-0002-0304-050607080910'
IPID_SERVICES = '00005678-1111-2222-3333-444455556666'
IPID_ENUM = '00009999-aaaa-bbbb-cccc-ddddeeeeffff'


def guid(text):
    return string_to_bin(text)


def text(b):
    return bin_to_string(b).lower()


def orpcthis_fields(o):
    return ['version=%d.%d' % (o['version']['MajorVersion'], o['version']['MinorVersion']),
            'orpc_flags=%d' % o['flags'], 'reserved1=%d' % o['reserved1'], 'cid=%s' % text(o['cid']),
            'extensions=%s' % ('null' if o.fields['extensions'].fields['ReferentID'] == 0
                               else 'set')]


def is_null(ptr):
    return ptr.fields['ReferentID'] == 0


def parse_property(cls, data):
    p = cls()
    size = p.fromString(data)
    p.fromStringReferents(data[size:])
    return p


def private_header_ok(chunk):
    """MS-RPCE 2.2.6.2: ObjectBufferLength counts the padded data after the headers, the filler
    is zero."""
    length, filler = struct.unpack('<LL', chunk[8:16])
    return length == len(chunk) - 16 and filler == 0 and len(chunk) % 8 == 0


def parse_rci(data):
    req = dcomrt.RemoteCreateInstance(data)
    f = orpcthis_fields(req['ORPCthis'])
    f.append('unkouter=%s' % ('null' if is_null(req.fields['pUnkOuter']) else 'set'))
    abdata = b''.join(req['pActProperties']['abData'])
    f.append('cnt_ok=%d' % (req['pActProperties']['ulCntData'] == len(abdata)))
    objref = dcomrt.OBJREF_CUSTOM(abdata)
    f += ['signature=%x' % objref['signature'], 'objref_flags=%d' % objref['flags'],
          'objref_iid=%s' % text(objref['iid']), 'objref_clsid=%s' % text(objref['clsid']),
          'cbExtension=%d' % objref['cbExtension']]
    blob_bytes = objref['pObjectData']
    blob = dcomrt.ACTIVATION_BLOB(blob_bytes)
    hdr = blob['CustomHeader']
    f += ['dwSize=%d' % blob['dwSize'], 'blob_len=%d' % len(blob_bytes),
          'totalSize=%d' % hdr['totalSize'], 'headerSize=%d' % hdr['headerSize'],
          'destCtx=%d' % hdr['destCtx'], 'cIfs=%d' % hdr['cIfs'],
          'pdwReserved=%s' % ('null' if is_null(hdr.fields['pdwReserved']) else 'set')]
    clsids = [text(c['Data']) for c in hdr['pclsid']]
    sizes = [s['Data'] for s in hdr['pSizes']]
    f += ['clsids=' + ','.join(clsids), 'sizes=' + ','.join(str(s) for s in sizes)]
    props = blob['Property']
    at = 0
    for clsid, size in zip(clsids, sizes):
        chunk = props[at:at + size]
        at += size
        if clsid == '000001ab-0000-0000-c000-000000000046':
            p = parse_property(dcomrt.InstantiationInfoData, chunk)
            f += ['classId=%s' % text(p['classId']), 'actvflags=%d' % p['actvflags'],
                  'fIsSurrogate=%d' % p['fIsSurrogate'], 'cIID=%d' % p['cIID'],
                  'iids=' + ','.join(text(i['Data']) for i in p['pIID']),
                  'thisSize=%d' % p['thisSize'],
                  'clientCOMVersion=%d.%d' % (p['clientCOMVersion']['MajorVersion'],
                                              p['clientCOMVersion']['MinorVersion'])]
        elif clsid == '000001a5-0000-0000-c000-000000000046':
            p = parse_property(dcomrt.ActivationContextInfoData, chunk)
            f += ['clientctx=%s' % ('null' if is_null(p.fields['pIFDClientCtx']) else 'set'),
                  'protoctx=%s' % ('null' if is_null(p.fields['pIFDPrototypeCtx']) else 'set')]
        elif clsid == '000001a4-0000-0000-c000-000000000046':
            p = parse_property(dcomrt.LocationInfoData, chunk)
            f += ['machineName=%s' % ('null' if is_null(p.fields['machineName']) else 'set'),
                  'processId=%d' % p['processId']]
        elif clsid == '000001aa-0000-0000-c000-000000000046':
            p = parse_property(dcomrt.ScmRequestInfoData, chunk)
            rr = p['remoteRequest']
            f += ['ClientImpLevel=%d' % rr['ClientImpLevel'],
                  'protseqs=' + ','.join(str(x) for x in rr['pRequestedProtseqs'])]
        f.append('ts_header=%s' % chunk[:8].hex())
        f.append('private_header_ok=%d' % private_header_ok(chunk))
    f.append('props_len_ok=%d' % (at == len(props)))
    # The CustomHeader's own serialization, after dwSize and dwReserved.
    f.append('header_private_ok=%d' % private_header_ok(blob_bytes[8:8 + hdr['headerSize']]))
    return f


def reserialized(req, data):
    """impacket writes back what it parsed: the same bytes but for the padding, which it fills
    with its own marker bytes where we put zeros."""
    again = req.getData()
    same = len(again) == len(data) and all(a == b or b == 0 for a, b in zip(again, data))
    return ['reserialized=%d' % same]


def parse(name, data):
    f = parse_fields(name, data)
    cls = {'rci': dcomrt.RemoteCreateInstance, 'ntlm_login': wmi.IWbemLevel1Login_NTLMLogin,
           'exec_method': wmi.IWbemServices_ExecMethod, 'next': wmi.IEnumWbemClassObject_Next,
           'rem_release': dcomrt.RemRelease}.get(name, wmi.IWbemServices_ExecQuery)
    return f + reserialized(cls(data), data)


def parse_fields(name, data):
    if name == 'rci':
        return parse_rci(data)
    if name == 'ntlm_login':
        req = wmi.IWbemLevel1Login_NTLMLogin(data)
        return orpcthis_fields(req['ORPCthis']) + [
            'namespace=%s' % req['wszNetworkResource'],
            'locale=%s' % ('null' if is_null(req.fields['wszPreferredLocale']) else 'set'),
            'lFlags=%d' % req['lFlags'],
            'pCtx=%s' % ('null' if is_null(req.fields['pCtx']) else 'set')]
    if name.startswith('exec_query'):
        req = wmi.IWbemServices_ExecQuery(data)
        return orpcthis_fields(req['ORPCthis']) + [
            'language=%s' % req['strQueryLanguage']['asData'],
            'query=%s' % req['strQuery']['asData'].encode('unicode_escape').decode().replace(' ', '_'),
            'lFlags=%d' % req['lFlags'],
            'pCtx=%s' % ('null' if is_null(req.fields['pCtx']) else 'set')]
    if name == 'exec_method':
        req = wmi.IWbemServices_ExecMethod(data)
        outer = req.fields['ppOutParams']
        return orpcthis_fields(req['ORPCthis']) + [
            'path=%s' % req['strObjectPath']['asData'].replace(' ', '_'),
            'method=%s' % req['strMethodName']['asData'], 'lFlags=%d' % req['lFlags'],
            'pCtx=%s' % ('null' if is_null(req.fields['pCtx']) else 'set'),
            'pInParams=%s' % ('null' if is_null(req.fields['pInParams']) else 'set'),
            'ppOutParams=%s' % ('null' if is_null(outer) else 'set'),
            'outParams=%s' % ('null' if is_null(outer.fields['Data']) else 'set'),
            'ppCallResult=%s' % ('null' if is_null(req.fields['ppCallResult']) else 'set')]
    if name == 'next':
        req = wmi.IEnumWbemClassObject_Next(data)
        return orpcthis_fields(req['ORPCthis']) + ['lTimeout=%d' % req['lTimeout'],
                                                   'uCount=%d' % req['uCount']]
    if name == 'rem_release':
        req = dcomrt.RemRelease(data)
        refs = ['%s/%d/%d' % (text(r['ipid']), r['cPublicRefs'], r['cPrivateRefs'])
                for r in req['InterfaceRefs']]
        return orpcthis_fields(req['ORPCthis']) + ['count=%d' % req['cInterfaceRefs'],
                                                   'refs=' + ','.join(refs)]
    raise ValueError(name)


# ---- responses


def dual_string_array(bindings, security):
    entries = []
    for tower, addr in bindings:
        entries.append(tower)
        entries += list(struct.unpack('<%dH' % len(addr), addr.encode('utf-16le')))
        entries.append(0)
    entries.append(0)
    offset = len(entries)
    for svc, name in security:
        entries += [svc, 0xffff]
        entries += list(struct.unpack('<%dH' % len(name), name.encode('utf-16le')))
        entries.append(0)
    entries.append(0)
    return entries, offset


BINDINGS = [(7, 'WIN-TARGET[49667]'), (7, '192.0.2.10[49667]')]
SECURITY = [(10, ''), (0x16, 'RPCSS/WIN-TARGET')]


def objref_standard(iid, ipid, oxid, oid, refs=5):
    o = dcomrt.OBJREF_STANDARD()
    o['iid'] = guid(iid)
    o['std']['flags'] = 0
    o['std']['cPublicRefs'] = refs
    o['std']['oxid'] = oxid
    o['std']['oid'] = oid
    o['std']['ipid'] = guid(ipid)
    entries, offset = dual_string_array(BINDINGS, SECURITY)
    o['saResAddr'] = struct.pack('<HH', len(entries), offset) + struct.pack(
        '<%dH' % len(entries), *entries)
    return o.getData()


def encoding_unit(n):
    payload = bytes([n]) * (5 + n)
    return struct.pack('<LL', 0x12345678, len(payload)) + payload


def objref_custom(n):
    o = dcomrt.OBJREF_CUSTOM()
    o['iid'] = guid(IID_WBEM_CLASS_OBJECT)
    o['clsid'] = guid(CLSID_WBEM_CLASS_OBJECT)
    o['cbExtension'] = 0
    data = encoding_unit(n)
    o['ObjectReferenceSize'] = len(data) + 8
    o['pObjectData'] = data
    return o.getData()


def interface_pointer(ptr, data):
    ptr['ulCntData'] = len(data)
    ptr['abData'] = list(data)


def extents(orpcthat):
    """An ORPCTHAT carrying two ORPC_EXTENTs (an error-information-like one and another)."""
    arr = dcomrt.ORPC_EXTENT_ARRAY()
    arr['size'] = 2
    arr['reserved'] = 0
    for i, (g, payload) in enumerate([('0000031c-0000-0000-c000-000000000046', b'\x11' * 13),
                                      ('00000334-0000-0000-c000-000000000046', b'\x22' * 8)]):
        e = dcomrt.PORPC_EXTENT()
        e['id'] = guid(g)
        e['size'] = len(payload)
        e['data'] = list(payload + bytes((8 - len(payload) % 8) % 8))
        arr['extent'].append(e)
    orpcthat['extensions'] = arr


def activation_out(hresult=0, iface_hresult=0):
    props = dcomrt.PropsOutInfo()
    props['cIfs'] = 1
    iid = dcomrt.IID()
    iid['Data'] = guid('f309ad18-d86a-11d0-a075-00c04fb68820')
    props['piid'].append(iid)
    hr = dcomrt.HRESULT()
    # impacket's HRESULT is a signed NDR long.
    hr['Data'] = iface_hresult - (1 << 32) if iface_hresult & 0x80000000 else iface_hresult
    props['phresults'].append(hr)
    ptr = dcomrt.PMInterfacePointer()
    interface_pointer(ptr, objref_standard('f309ad18-d86a-11d0-a075-00c04fb68820', IPID_LOGIN,
                                           0x1122334455667788, 0x0102030405060708))
    props['ppIntfData'].append(ptr)

    scm = dcomrt.ScmReplyInfoData()
    scm['pdwReserved'] = 0
    reply = scm['remoteReply']
    reply['Oxid'] = 0x1122334455667788
    entries, offset = dual_string_array(BINDINGS, SECURITY)
    reply['pdsaOxidBindings']['wNumEntries'] = len(entries)
    reply['pdsaOxidBindings']['wSecurityOffset'] = offset
    reply['pdsaOxidBindings']['aStringArray'] = entries
    reply['ipidRemUnknown'] = guid(IPID_REMUNKNOWN)
    reply['authnHint'] = 5
    reply['serverVersion']['MajorVersion'] = 5
    reply['serverVersion']['MinorVersion'] = 7

    blob = dcomrt.ACTIVATION_BLOB()
    blob['CustomHeader']['destCtx'] = 2
    blob['CustomHeader']['pdwReserved'] = NULL
    properties = b''
    for clsid, p in ((dcomrt.CLSID_PropsOutInfo, props), (dcomrt.CLSID_ScmReplyInfo, scm)):
        c = dcomrt.CLSID()
        c['Data'] = clsid
        blob['CustomHeader']['pclsid'].append(c)
        marshaled = p.getData() + p.getDataReferents()
        marshaled += bytes((8 - len(marshaled) % 8) % 8)
        size = dcomrt.DWORD()
        size['Data'] = len(marshaled)
        blob['CustomHeader']['pSizes'].append(size)
        properties += marshaled
    blob['Property'] = properties

    objref = dcomrt.OBJREF_CUSTOM()
    objref['iid'] = dcomrt.IID_IActivationPropertiesOut[:16]
    objref['clsid'] = dcomrt.CLSID_ActivationPropertiesOut
    objref['cbExtension'] = 0
    objref['pObjectData'] = blob.getData()
    objref['ObjectReferenceSize'] = len(objref['pObjectData']) + 8
    return objref.getData()


def build():
    out = responses()
    for k, v in out.items():
        print(k, v.hex())


def seeds(directory):
    import os
    for name, stub in responses().items():
        if name.startswith('rci'):
            first = 0
        elif name.startswith('ntlm_login') or name.startswith('exec_query'):
            first = 1
        elif name.startswith('exec_method'):
            first = 2
        elif name.startswith('next'):
            first = 3 + 6 * 10  # ten objects asked for
        elif name.startswith('rem_release'):
            first = 4
        else:
            first = 5
        with open(os.path.join(directory, name), 'wb') as f:
            f.write(bytes([first]) + stub)


def responses():
    out = {}

    def rci(ext=False, hresult=0, iface_hresult=0):
        r = dcomrt.RemoteCreateInstanceResponse()
        r['ORPCthat']['flags'] = 0
        if ext:
            extents(r['ORPCthat'])
        else:
            r['ORPCthat']['extensions'] = NULL
        if hresult:
            r['ppActProperties'] = NULL
        else:
            interface_pointer(r['ppActProperties'], activation_out(iface_hresult=iface_hresult))
        r['ErrorCode'] = hresult
        return r.getData()

    out['rci'] = rci()
    out['rci_ext'] = rci(ext=True)
    out['rci_denied'] = rci(hresult=0x80070005)
    out['rci_classnotreg'] = rci(iface_hresult=0x80040154)

    def iface(cls, iid, ipid, hresult=0, ext=False):
        r = cls()
        r['ORPCthat']['flags'] = 0
        if ext:
            extents(r['ORPCthat'])
        else:
            r['ORPCthat']['extensions'] = NULL
        field = 'ppNamespace' if cls is wmi.IWbemLevel1Login_NTLMLoginResponse else 'ppEnum'
        if hresult:
            r[field] = NULL
        else:
            interface_pointer(r[field], objref_standard(iid, ipid, 0x1122334455667788, 0x99))
        r['ErrorCode'] = hresult
        return r.getData()

    out['ntlm_login'] = iface(wmi.IWbemLevel1Login_NTLMLoginResponse,
                              '9556dc99-828c-11cf-a37e-00aa003240c7', IPID_SERVICES)
    out['ntlm_login_ext'] = iface(wmi.IWbemLevel1Login_NTLMLoginResponse,
                                  '9556dc99-828c-11cf-a37e-00aa003240c7', IPID_SERVICES, ext=True)
    out['ntlm_login_denied'] = iface(wmi.IWbemLevel1Login_NTLMLoginResponse, '', '',
                                     hresult=0x80041003)
    out['ntlm_login_nonamespace'] = iface(wmi.IWbemLevel1Login_NTLMLoginResponse, '', '',
                                          hresult=0x8004100e)
    out['exec_query'] = iface(wmi.IWbemServices_ExecQueryResponse,
                              '027947e1-d731-11ce-a357-000000000001', IPID_ENUM)
    out['exec_query_invalid'] = iface(wmi.IWbemServices_ExecQueryResponse, '', '',
                                      hresult=0x80041017)

    def nxt(count, hresult, ext=False):
        r = wmi.IEnumWbemClassObject_NextResponse()
        r['ORPCthat']['flags'] = 0
        if ext:
            extents(r['ORPCthat'])
        else:
            r['ORPCthat']['extensions'] = NULL
        for i in range(count):
            p = dcomrt.PMInterfacePointer()
            interface_pointer(p, objref_custom(i + 1))
            r['apObjects'].append(p)
        r['puReturned'] = count
        r['ErrorCode'] = hresult
        return r.getData()

    out['next_3'] = nxt(3, 0)
    out['next_2_false'] = nxt(2, 1)
    out['next_2_false_ext'] = nxt(2, 1, ext=True)
    out['next_0_false'] = nxt(0, 1)
    out['next_0_timedout'] = nxt(0, 0x00040004)
    out['next_failed'] = nxt(0, 0x80041001)

    def method(with_out, hresult=0):
        r = wmi.IWbemServices_ExecMethodResponse()
        r['ORPCthat']['flags'] = 0
        r['ORPCthat']['extensions'] = NULL
        if with_out:
            interface_pointer(r['ppOutParams'], objref_custom(7))
        else:
            r['ppOutParams'] = NULL
        r['ppCallResult'] = NULL
        r['ErrorCode'] = hresult
        return r.getData()

    out['exec_method'] = method(True)
    out['exec_method_none'] = method(False)
    out['exec_method_invalid'] = method(False, 0x8004102e)

    for name, hr in (('rem_release', 0), ('rem_release_failed', 0x80070057)):
        r = dcomrt.RemReleaseResponse()
        r['ORPCthat']['flags'] = 0
        r['ORPCthat']['extensions'] = NULL
        r['ErrorCode'] = hr
        out[name] = r.getData()
    out['custom_objref'] = objref_custom(3)
    out['standard_objref'] = objref_standard('9556dc99-828c-11cf-a37e-00aa003240c7',
                                             IPID_SERVICES, 0x42, 0x43, 7)
    return out


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'check':
        pass
    elif cmd == 'build':
        build()
    elif cmd == 'seeds':
        seeds(sys.argv[2])
    elif cmd == 'parse':
        for line in sys.stdin:
            name, data = line.split()
            print(name, ' '.join(parse(name, bytes.fromhex(data))))
