#!/usr/bin/python3
"""The WMI side shared by the test peers (winrm_peer.py, wmi_peer.py): the
fixture of classes and instances (re-read when it changes), the service state
changes made by StartService/StopService, and a small WQL evaluator.  Both
peers import it through sys.path so they serve the same fixture the same way.

Not a test itself; only the peers import it.
"""
import json
import os
import re
import threading


# --------------------------------------------------------------------------
# Fixture (re-read when its mtime changes, so a test can append NTLogEvent
# records while the peer runs) and the fault plan (likewise).
# --------------------------------------------------------------------------
class ReloadingJson:
    def __init__(self, path, default):
        self.path = path
        self.default = default
        self.stamp = None
        self.value = default
        self.lock = threading.Lock()
        self.get()

    def get(self):
        if not self.path:
            return self.value
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp != self.stamp:
                    with open(self.path, encoding='utf-8') as fh:
                        value = json.load(fh)
                    # Only take it once it parses: a test may be mid-write.
                    self.value, self.stamp = value, stamp
            except (OSError, ValueError):
                pass
            return self.value


class Store:
    """The WMI side: classes, namespaces, services' state changes."""

    def __init__(self, path):
        self.data = ReloadingJson(path, {})
        # Start/StopService changes survive a reload of the fixture file.
        self.overrides = {}
        self.lock = threading.Lock()

    def classes(self):
        return self.data.get().get('classes', {})

    def find_class(self, namespace, name):
        """Case-insensitive (WMI is) lookup; returns (canonical name, rows) or None."""
        nss = self.data.get().get('namespaces')
        if nss is not None:
            ns_key = next((k for k in nss if k.lower() == namespace.lower()), None)
            if ns_key is None:
                return None
            if not any(c.lower() == name.lower() for c in nss[ns_key]):
                return None
        for cname, rows in self.classes().items():
            if cname.lower() == name.lower():
                out = []
                with self.lock:
                    for i, row in enumerate(rows):
                        row = dict(row)
                        row.update(self.overrides.get((cname, _row_key(row, i)), {}))
                        out.append(row)
                return cname, out
        return None

    def update(self, cname, row, changes):
        with self.lock:
            self.overrides.setdefault((cname, _row_key(row, None)), {}).update(changes)

    def service_control(self, cname, row, method):
        """Win32_Service StartService/StopService on a row: changes the State
        (kept across fixture reloads) and returns Windows' ReturnValue."""
        state = row.get('State')
        if method == 'StartService':
            if state == 'Running':
                return 10  # The service is already running
            if row.get('StartMode') == 'Disabled':
                return 14  # The service has been disabled
            self.update(cname, row, {'State': 'Running', 'Started': True, 'Status': 'OK',
                                     'ProcessId': row.get('ProcessId') or 4242})
            return 0
        if state != 'Running' or row.get('AcceptStop') is False:
            return 5  # The service cannot accept control messages at this time
        self.update(cname, row, {'State': 'Stopped', 'Started': False, 'ProcessId': 0})
        return 0

    def commands(self):
        return self.data.get().get('commands', {})


def _row_key(row, index):
    for k in ('Name', 'DeviceID', 'RecordNumber'):
        if k in row:
            return '%s=%s' % (k, row[k])
    return '#%s' % index


# --------------------------------------------------------------------------
# A tiny WQL: SELECT <* | a, b> FROM Class [WHERE cond], cond built from
# comparisons (= <> != < > <= >=, LIKE, IS [NOT] NULL), AND, OR, NOT, ().
# --------------------------------------------------------------------------
class WqlError(Exception):
    pass


_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|\*)
  | (?P<id>[A-Za-z_][A-Za-z0-9_.]*)
)""", re.X)


def _tokenize(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise WqlError('unexpected input at %r' % text[pos:pos + 20])
        pos = m.end()
        if m.group('str') is not None:
            s = m.group('str')
            out.append(('str', s[1:-1].replace(s[0] * 2, s[0])))
        elif m.group('num') is not None:
            n = m.group('num')
            out.append(('num', float(n) if '.' in n else int(n)))
        elif m.group('op') is not None:
            out.append(('op', m.group('op')))
        else:
            out.append(('id', m.group('id')))
    return out


class Wql:
    def __init__(self, text):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self._kw('SELECT')
        if self._peek() == ('op', '*'):
            self.i += 1
            self.props = None  # all properties: Windows renders the class instance
        else:
            self.props = [self._ident()]
            while self._peek() == ('op', ','):
                self.i += 1
                self.props.append(self._ident())
        self._kw('FROM')
        self.cls = self._ident()
        self.where = None
        if self._peek_kw('WHERE'):
            self.i += 1
            self.where = self._or()
        if self.i != len(self.toks):
            raise WqlError('trailing input')

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def _peek_kw(self, kw):
        t = self._peek()
        return t[0] == 'id' and t[1].upper() == kw

    def _kw(self, kw):
        if not self._peek_kw(kw):
            raise WqlError('expected %s' % kw)
        self.i += 1

    def _ident(self):
        t = self._peek()
        if t[0] != 'id':
            raise WqlError('expected a name')
        self.i += 1
        return t[1]

    def _or(self):
        node = self._and()
        while self._peek_kw('OR'):
            self.i += 1
            node = ('or', node, self._and())
        return node

    def _and(self):
        node = self._not()
        while self._peek_kw('AND'):
            self.i += 1
            node = ('and', node, self._not())
        return node

    def _not(self):
        if self._peek_kw('NOT'):
            self.i += 1
            return ('not', self._not())
        if self._peek() == ('op', '('):
            self.i += 1
            node = self._or()
            if self._peek() != ('op', ')'):
                raise WqlError('expected )')
            self.i += 1
            return node
        return self._cmp()

    def _cmp(self):
        prop = self._ident()
        if self._peek_kw('IS'):
            self.i += 1
            neg = False
            if self._peek_kw('NOT'):
                self.i += 1
                neg = True
            self._kw('NULL')
            return ('isnull', prop, neg)
        if self._peek_kw('LIKE'):
            self.i += 1
            t = self._peek()
            if t[0] != 'str':
                raise WqlError('LIKE needs a string')
            self.i += 1
            return ('like', prop, t[1])
        op = self._peek()
        if op[0] != 'op' or op[1] not in ('=', '<>', '!=', '<', '>', '<=', '>='):
            raise WqlError('expected a comparison')
        self.i += 1
        t = self._peek()
        if t[0] in ('str', 'num'):
            value = t[1]
        elif t[0] == 'id' and t[1].upper() in ('TRUE', 'FALSE'):
            value = t[1].upper() == 'TRUE'
        elif t[0] == 'id' and t[1].upper() == 'NULL':
            value = None
        else:
            raise WqlError('expected a constant')
        self.i += 1
        return ('cmp', prop, op[1], value)

    def matches(self, row):
        return self.where is None or _eval(self.where, row)


def get_prop(row, name):
    for k, v in row.items():
        if k.lower() == name.lower():
            return True, v
    return False, None


def _eval(node, row):
    kind = node[0]
    if kind == 'and':
        return _eval(node[1], row) and _eval(node[2], row)
    if kind == 'or':
        return _eval(node[1], row) or _eval(node[2], row)
    if kind == 'not':
        return not _eval(node[1], row)
    found, v = get_prop(row, node[1])
    if not found:
        # WMI rejects a WHERE on a property the class does not have.
        raise WqlError('no property %s' % node[1])
    if kind == 'isnull':
        return (v is not None) if node[2] else (v is None)
    if kind == 'like':
        pat = '^' + ''.join('.*' if c == '%' else '.' if c == '_' else re.escape(c)
                            for c in node[2]) + '$'
        return v is not None and re.match(pat, str(v), re.I | re.S) is not None
    _, _, op, lit = node
    if v is None or lit is None:
        return False
    a, b = v, lit
    if isinstance(a, bool) or isinstance(b, bool):
        a, b = (str(a).lower() in ('true', '1')), (str(b).lower() in ('true', '1'))
    elif isinstance(a, (int, float)) or isinstance(b, (int, float)):
        try:
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            a, b = str(a).lower(), str(b).lower()
    else:
        # WQL string comparison is case-insensitive; DMTF datetimes compare
        # correctly as strings when both have the same UTC offset.
        a, b = str(a).lower(), str(b).lower()
    return {'=': a == b, '<>': a != b, '!=': a != b, '<': a < b, '>': a > b,
            '<=': a <= b, '>=': a >= b}[op]
