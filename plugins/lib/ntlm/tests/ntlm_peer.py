#!/usr/bin/python3
"""The other end of test_ntlm, built on two independent NTLM implementations: impacket (CHALLENGE
messages, NTLMv2 proof, DCE/RPC-style sealing) and ntlm_auth (WinRM-style sealing).

  ntlm_peer.py check                     exit 0 when both packages import
  ntlm_peer.py challenge DIR [notime] [nokeyexch]
        write DIR/challenge.bin: with MsvAvTimestamp unless notime, granting KEY_EXCH unless nokeyexch
  ntlm_peer.py verify DIR USER DOMAIN PASSWORD SPN CBT_HEX
        check DIR/authenticate.bin against DIR/negotiate.bin and DIR/challenge.bin as a server
        would; print "key <exported session key>" and "flags <negotiated flags>"
  ntlm_peer.py winrm KEY FLAGS < lines   server side with ntlm_auth.session_security
  ntlm_peer.py dcerpc KEY FLAGS < lines  server side with impacket.ntlm SEAL/MAC

Line protocol (hex fields), one answer line per input line, in order:
  winrm:  c CIPHER SIG -> "plain HEX" | "bad"     s PLAIN -> "sealed CIPHER SIG"
          v MSG SIG    -> "verified" | "bad"      g MSG   -> "signed SIG"
  dcerpc: c PDU OFF LEN SIG -> "plain PDU" | "bad"   (the stub PDU[OFF:OFF+LEN] is encrypted)
          s PDU OFF LEN     -> "sealed PDU SIG"
"""
import calendar
import hmac
import os
import struct
import sys
import time


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def challenge(d, with_time, key_exch):
    from impacket import ntlm
    c = ntlm.NTLMAuthChallenge()
    c['flags'] = (ntlm.NTLMSSP_NEGOTIATE_UNICODE | ntlm.NTLMSSP_REQUEST_TARGET |
                  ntlm.NTLMSSP_NEGOTIATE_SIGN | ntlm.NTLMSSP_NEGOTIATE_SEAL |
                  ntlm.NTLMSSP_NEGOTIATE_NTLM | ntlm.NTLMSSP_NEGOTIATE_ALWAYS_SIGN |
                  ntlm.NTLMSSP_TARGET_TYPE_DOMAIN | ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY |
                  ntlm.NTLMSSP_NEGOTIATE_TARGET_INFO | ntlm.NTLMSSP_NEGOTIATE_VERSION |
                  ntlm.NTLMSSP_NEGOTIATE_128 | ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH |
                  ntlm.NTLMSSP_NEGOTIATE_56)
    if not key_exch:
        c['flags'] &= ~ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH
    c['challenge'] = os.urandom(8)
    c['domain_name'] = 'OUTPOST'.encode('utf-16le')
    c['domain_offset'] = 48 + 8
    c['Version'] = b'\x0a\x00\x7c\x4f\x00\x00\x00\x0f'
    c['VersionLen'] = 8
    av = ntlm.AV_PAIRS()
    av[ntlm.NTLMSSP_AV_DOMAINNAME] = 'OUTPOST'.encode('utf-16le')
    av[ntlm.NTLMSSP_AV_HOSTNAME] = 'WINHOST'.encode('utf-16le')
    av[ntlm.NTLMSSP_AV_DNS_DOMAINNAME] = 'outpost.test'.encode('utf-16le')
    av[ntlm.NTLMSSP_AV_DNS_HOSTNAME] = 'winhost.outpost.test'.encode('utf-16le')
    if with_time:
        now = 116444736000000000 + calendar.timegm(time.gmtime()) * 10000000
        av[ntlm.NTLMSSP_AV_TIME] = struct.pack('<q', now)
    c['TargetInfoFields'] = av
    c['TargetInfoFields_len'] = len(av)
    c['TargetInfoFields_max_len'] = len(av)
    c['TargetInfoFields_offset'] = 48 + 8 + len(c['domain_name'])
    with open(os.path.join(d, 'challenge.bin'), 'wb') as f:
        f.write(c.getData())


def read(d, name):
    with open(os.path.join(d, name), 'rb') as f:
        return f.read()


def verify(d, user, domain, password, spn, cbt_hex):
    from impacket import ntlm
    from Cryptodome.Cipher import ARC4
    neg, chal_bytes, auth_bytes = read(d, 'negotiate.bin'), read(d, 'challenge.bin'), read(
        d, 'authenticate.bin')
    chal = ntlm.NTLMAuthChallenge(chal_bytes)
    auth = ntlm.NTLMAuthChallengeResponse()
    auth.fromString(auth_bytes)
    if auth_bytes[:8] != b'NTLMSSP\x00' or struct.unpack('<I', auth_bytes[8:12])[0] != 3:
        die('not an AUTHENTICATE_MESSAGE')
    flags = auth['flags']
    if auth['user_name'].decode('utf-16le') != user:
        die('user name differs')
    if auth['domain_name'].decode('utf-16le') != domain:
        die('domain name differs')

    # NTLMv2 response: NTProofStr, then temp (MS-NLMP 2.2.2.7).
    nt = auth['ntlm']
    proof, temp = nt[:16], nt[16:]
    if temp[:2] != b'\x01\x01':
        die('not an NTLMv2 response')
    key_nt = ntlm.NTOWFv2(user, password, domain)
    want = ntlm.hmac_md5(key_nt, chal['challenge'] + temp)
    if not hmac.compare_digest(proof, want):
        die('NTProofStr does not verify')
    client_av = ntlm.AV_PAIRS(temp[28:])
    server_av = ntlm.AV_PAIRS(chal['TargetInfoFields'])
    for k, v in server_av.fields.items():
        if k in (ntlm.NTLMSSP_AV_EOL,):
            continue
        if client_av[k] != v:
            die('AV pair %d of the server was not returned as sent' % k)
    has_time = server_av[ntlm.NTLMSSP_AV_TIME] is not None
    if has_time and temp[8:16] != server_av[ntlm.NTLMSSP_AV_TIME][1]:
        die('the response does not carry the server timestamp')
    av_flags = client_av[ntlm.NTLMSSP_AV_FLAGS]
    av_flags = struct.unpack('<I', av_flags[1])[0] if av_flags else 0
    if has_time != bool(av_flags & 2):
        die('MsvAvFlags MIC bit is %d with a server timestamp %s' % (av_flags & 2, has_time))
    if spn and client_av[ntlm.NTLMSSP_AV_TARGET_NAME] != (
            len(spn) * 2, spn.encode('utf-16le')):
        die('MsvAvTargetName differs')
    cbt = bytes.fromhex(cbt_hex) if cbt_hex != '-' else b'\x00' * 16
    if client_av[ntlm.NTLMSSP_AV_CHANNEL_BINDINGS] != (16, cbt):
        die('MsvAvChannelBindings differs')
    lm = auth['lanman']
    if has_time and lm != b'\x00' * 24:
        die('LmChallengeResponse is not Z(24) although the server sent a timestamp')
    if not has_time and lm != ntlm.hmac_md5(key_nt, chal['challenge'] + lm[16:]) + lm[16:]:
        die('LMv2 response does not verify')

    # Session keys (MS-NLMP 3.2.5.1.2): KeyExchangeKey = SessionBaseKey for NTLMv2.
    base = ntlm.hmac_md5(key_nt, proof)
    off = struct.unpack('<I', auth_bytes[56:60])[0]
    ln = struct.unpack('<H', auth_bytes[52:54])[0]
    if flags & ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH:
        exported = ARC4.new(base).decrypt(auth_bytes[off:off + ln])
    else:
        exported = base
    if has_time:
        mic = auth_bytes[72:88]
        zeroed = auth_bytes[:72] + b'\x00' * 16 + auth_bytes[88:]
        if not hmac.compare_digest(mic, ntlm.hmac_md5(exported, neg + chal_bytes + zeroed)):
            die('MIC does not verify')
    print('key', exported.hex())
    print('flags', flags)


def winrm(key, flags):
    from ntlm_auth.session_security import SessionSecurity
    s = SessionSecurity(flags, key, source='server')
    for line in sys.stdin:
        f = line.split()
        if not f:
            continue
        if f[0] == 'c':
            try:
                print('plain', s.unwrap(bytes.fromhex(f[1]), bytes.fromhex(f[2])).hex())
            except Exception:
                print('bad')
        elif f[0] == 's':
            cipher, sig = s.wrap(bytes.fromhex(f[1]))
            print('sealed', cipher.hex(), sig.hex())
        elif f[0] == 'v':
            try:
                s._verify_signature(bytes.fromhex(f[1]), bytes.fromhex(f[2]))
                print('verified')
            except Exception:
                print('bad')
        elif f[0] == 'g':
            print('signed', s._get_signature(bytes.fromhex(f[1])).hex())


def dcerpc(key, flags):
    from impacket import ntlm
    from Cryptodome.Cipher import ARC4
    cli_sign = ntlm.SIGNKEY(flags, key, 'Client')
    srv_sign = ntlm.SIGNKEY(flags, key, 'Server')
    cli_rc4 = ARC4.new(ntlm.SEALKEY(flags, key, 'Client')).encrypt
    srv_rc4 = ARC4.new(ntlm.SEALKEY(flags, key, 'Server')).encrypt
    cli_seq = srv_seq = 0
    for line in sys.stdin:
        f = line.split()
        if not f:
            continue
        pdu, off, ln = bytearray.fromhex(f[1]), int(f[2]), int(f[3])
        if f[0] == 'c':
            pdu[off:off + ln] = cli_rc4(bytes(pdu[off:off + ln]))
            sig = ntlm.MAC(flags, cli_rc4, cli_sign, cli_seq, bytes(pdu)).getData()
            cli_seq += 1
            print('plain', pdu.hex() if hmac.compare_digest(sig, bytes.fromhex(f[4])) else 'bad')
        elif f[0] == 's':
            sealed, sig = ntlm.SEAL(flags, srv_sign, None, bytes(pdu), bytes(pdu[off:off + ln]),
                                    srv_seq, srv_rc4)
            srv_seq += 1
            pdu[off:off + ln] = sealed
            print('sealed', pdu.hex(), sig.getData().hex())


def main():
    a = sys.argv[1:]
    if a[0] == 'check':
        import impacket.ntlm  # noqa: F401
        import ntlm_auth.session_security  # noqa: F401
        import Cryptodome.Cipher.ARC4  # noqa: F401
    elif a[0] == 'challenge':
        challenge(a[1], 'notime' not in a[2:], 'nokeyexch' not in a[2:])
    elif a[0] == 'verify':
        verify(*a[1:7])
    elif a[0] == 'winrm':
        winrm(bytes.fromhex(a[1]), int(a[2]))
    elif a[0] == 'dcerpc':
        dcerpc(bytes.fromhex(a[1]), int(a[2]))
    else:
        die('unknown command ' + a[0])


if __name__ == '__main__':
    main()
