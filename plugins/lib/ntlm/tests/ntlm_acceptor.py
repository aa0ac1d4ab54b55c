#!/usr/bin/python3
"""NTLM acceptor (server side of MS-NLMP 3.2.5) for the test peers, built on
impacket's NTLM structures and primitives (python3-impacket), an independent
implementation.  Used by plugins/winrm/tests/winrm_peer.py (WS-Man) and
plugins/wmi/tests/wmi_peer.py (DCE/RPC), which import it through sys.path.

Only /usr/bin/python3 can import impacket (a Debian package).
"""
import hmac
import os
import struct
import time

from impacket import ntlm

# --------------------------------------------------------------------------
# NTLM acceptor (MS-NLMP 3.2.5) on impacket's structures and primitives.
# --------------------------------------------------------------------------
# Flags we grant when the client asks for them.
GRANTABLE = (ntlm.NTLMSSP_NEGOTIATE_UNICODE | ntlm.NTLMSSP_NEGOTIATE_SIGN |
             ntlm.NTLMSSP_NEGOTIATE_SEAL | ntlm.NTLMSSP_NEGOTIATE_ALWAYS_SIGN |
             ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY |
             ntlm.NTLMSSP_NEGOTIATE_VERSION | ntlm.NTLMSSP_NEGOTIATE_128 |
             ntlm.NTLMSSP_NEGOTIATE_56 | ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH |
             ntlm.NTLMSSP_NEGOTIATE_IDENTIFY)
MSV_AV_FLAGS_MIC = 0x2


def filetime_now():
    return int((time.time() + 11644473600) * 10_000_000)


class NtlmAcceptor:
    def __init__(self, user, password, domain, hostname, accounts=None):
        """accounts: further {user: password} the acceptor knows besides user."""
        self.user, self.password = user, password
        self.accounts = {k.lower(): v for k, v in (accounts or {}).items()}
        self.accounts[user.lower()] = password
        self.domain, self.hostname = domain, hostname
        self.negotiate_raw = self.challenge_raw = None
        self.server_challenge = None

    def challenge(self, negotiate_raw):
        neg = ntlm.NTLMAuthNegotiate()
        neg.fromString(negotiate_raw)
        client = neg['flags']
        flags = (client & GRANTABLE) | ntlm.NTLMSSP_NEGOTIATE_NTLM | \
            ntlm.NTLMSSP_NEGOTIATE_TARGET_INFO | ntlm.NTLMSSP_TARGET_TYPE_SERVER | \
            ntlm.NTLMSSP_REQUEST_TARGET
        if not flags & ntlm.NTLMSSP_NEGOTIATE_UNICODE:
            # ntlm-auth 1.4 asks for OEM only; MS-NLMP 3.2.5.1.1 has the server
            # answer OEM then (the AUTHENTICATE strings come in OEM as well).
            if not client & ntlm.NTLM_NEGOTIATE_OEM:
                raise ValueError('client asks for neither UNICODE nor OEM')
            flags |= ntlm.NTLM_NEGOTIATE_OEM
        self.unicode = bool(flags & ntlm.NTLMSSP_NEGOTIATE_UNICODE)
        self.server_challenge = os.urandom(8)
        av = ntlm.AV_PAIRS()
        av[ntlm.NTLMSSP_AV_DOMAINNAME] = self.domain.upper().encode('utf-16le')
        av[ntlm.NTLMSSP_AV_HOSTNAME] = self.hostname.upper().encode('utf-16le')
        av[ntlm.NTLMSSP_AV_DNS_DOMAINNAME] = self.hostname.lower().encode('utf-16le')
        av[ntlm.NTLMSSP_AV_DNS_HOSTNAME] = self.hostname.lower().encode('utf-16le')
        av[ntlm.NTLMSSP_AV_TIME] = struct.pack('<Q', filetime_now())
        target = self.hostname.upper().encode('utf-16le' if self.unicode else 'ascii')
        chal = ntlm.NTLMAuthChallenge()
        chal['flags'] = flags
        chal['challenge'] = self.server_challenge
        chal['domain_name'] = target
        # Windows Server 2019, build 17763, NTLM revision 15.
        version = struct.pack('<BBH3xB', 10, 0, 17763, 15) if \
            flags & ntlm.NTLMSSP_NEGOTIATE_VERSION else b''
        chal['Version'] = version
        chal['domain_offset'] = 48 + len(version)
        chal['TargetInfoFields'] = av.getData()
        chal['TargetInfoFields_offset'] = 48 + len(version) + len(target)
        self.negotiate_raw = negotiate_raw
        self.challenge_raw = chal.getData()
        return self.challenge_raw

    def authenticate(self, auth_raw):
        """Returns (ntlm_auth SessionSecurity for the server side, user, mic_present)
        or raises PermissionError(reason)."""
        from ntlm_auth.session_security import SessionSecurity
        flags, exported, user, mic_present = self.accept(auth_raw)
        return SessionSecurity(flags, exported, source='server'), user, mic_present

    def accept(self, auth_raw):
        """Checks an AUTHENTICATE; returns (negotiated flags, exported session key,
        user, mic_present) or raises PermissionError(reason)."""
        if self.server_challenge is None:
            raise PermissionError('AUTHENTICATE without a CHALLENGE on this connection')
        auth = ntlm.NTLMAuthChallengeResponse()
        auth.fromString(auth_raw)
        flags = auth['flags']
        enc = 'utf-16le' if flags & ntlm.NTLMSSP_NEGOTIATE_UNICODE else 'cp437'
        user = auth['user_name'].decode(enc)
        domain = auth['domain_name'].decode(enc)
        if user.lower() not in self.accounts:
            raise PermissionError('unknown user %r' % user)
        password = self.accounts[user.lower()]
        if domain and domain.lower() not in (self.domain.lower(), self.hostname.lower(), '.'):
            raise PermissionError('unknown domain %r' % domain)
        nt = auth['ntlm']
        if len(nt) <= 24:
            raise PermissionError('NTLMv1 response refused (LmCompatibilityLevel 5)')
        nt_proof, blob = nt[:16], nt[16:]
        # NTOWFv2 takes the domain exactly as the client sent it.
        key_nt = ntlm.NTOWFv2(user, password, domain)
        if not hmac.compare_digest(ntlm.hmac_md5(key_nt, self.server_challenge + blob), nt_proof):
            raise PermissionError('NTLMv2 proof mismatch (wrong password)')
        session_base_key = ntlm.hmac_md5(key_nt, nt_proof)
        key_exchange_key = session_base_key  # KXKEY for NTLMv2
        if flags & ntlm.NTLMSSP_NEGOTIATE_KEY_EXCH and auth['session_key']:
            # RC4 is its own inverse: impacket's encryptor decrypts the
            # EncryptedRandomSessionKey into the ExportedSessionKey.
            exported = ntlm.generateEncryptedSessionKey(key_exchange_key, auth['session_key'])
        else:
            exported = key_exchange_key
        # The MIC is present when the client's blob says so (MsvAvFlags bit 2);
        # it sits at offset 72, after the VERSION field.
        av = ntlm.AV_PAIRS(blob[28:])
        mic_present = False
        if av[ntlm.NTLMSSP_AV_FLAGS] is not None:
            mic_present = bool(struct.unpack('<L', av[ntlm.NTLMSSP_AV_FLAGS][1])[0] & MSV_AV_FLAGS_MIC)
        if mic_present:
            mic = auth_raw[72:88]
            zeroed = auth_raw[:72] + b'\0' * 16 + auth_raw[88:]
            want = ntlm.hmac_md5(exported, self.negotiate_raw + self.challenge_raw + zeroed)
            if not hmac.compare_digest(mic, want):
                raise PermissionError('MIC mismatch')
        self.server_challenge = None  # a challenge is good for one answer
        return flags, exported, user, mic_present
