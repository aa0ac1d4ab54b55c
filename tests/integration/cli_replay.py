#!/usr/bin/env python3
"""A login shell that plays a vendor CLI from a transcript, for the tests of the CLI drivers.

    cli_replay.py TRANSCRIPT [-c COMMANDS]

TRANSCRIPT: "#! key value" header lines (vendor ios|nxos|eos|junos|panos, hostname, banner,
secret, user) then "=== COMMAND" sections whose text is that command's output. "{now}" in an
output is the current time (so volatile lines differ between two reads), "{user}" the login.
The running configuration is the "=== show-config" section; in IOS-style configuration mode a
line is added to it (before "end"), "no LINE" removes LINE, and the result is kept in
$HOME/replay-VENDOR.cfg so later sessions see it; each pager prompt shown is logged to
$HOME/replay-paged.log. Environment: REPLAY_PRIV=1 starts unprivileged
(">", "enable" asks for the secret), REPLAY_NO_SETUP=1 ignores the commands that turn paging off.
The terminal is put in non-canonical mode without echo, and the shell echoes what it reads, as a
network OS does. Written from the vendors' public documentation, not recorded from devices.
"""
import os
import sys
import termios
import time

VENDORS = {
    "ios": dict(error="% Invalid input detected at '^' marker.", pager=" --More-- ",
                nopage=("terminal length 0",), show="show running-config",
                enter=("configure terminal",), style="ios"),
    "nxos": dict(error="% Invalid command at '^' marker.", pager=" --More-- ",
                 nopage=("terminal length 0",), show="show running-config",
                 enter=("configure terminal",), style="ios"),
    "eos": dict(error="% Invalid input", pager=" --More-- ", nopage=("terminal length 0",),
                show="show running-config", enter=("configure terminal", "configure"),
                style="ios"),
    "junos": dict(error="unknown command.", pager="---(more)---",
                  nopage=("set cli screen-length 0",), show="show configuration | display omit",
                  enter=("configure private", "configure", "edit"), style="junos"),
    "panos": dict(error="Unknown command: {word}", pager="lines {a}-{b} ",
                  nopage=("set cli pager off",), show="show config running",
                  enter=("configure",), style="panos"),
}
PAGE = 24
# The first words an IOS-style configuration mode accepts in this emulation.
IOS_CONFIG_WORDS = {"ip", "ipv6", "interface", "description", "hostname", "ntp", "logging",
                    "snmp-server", "username", "banner", "router", "vlan", "service",
                    "spanning-tree", "access-list", "no", "shutdown", "clock", "feature"}


def load(path):
    head, sections, cur = {}, {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if cur is None and line.startswith("#! "):
                k, _, v = line[3:].partition(" ")
                head[k] = v
            elif line.startswith("=== "):
                cur = line[4:]
                sections[cur] = []
            elif cur is not None:
                sections[cur].append(line)
    return head, {k: "\n".join(v).rstrip("\n") + "\n" for k, v in sections.items()}


class Shell:
    def __init__(self, path):
        self.head, self.out = load(path)
        self.vendor = self.head["vendor"]
        self.v = VENDORS[self.vendor]
        self.host = self.head.get("hostname", "router")
        self.user = os.environ.get("USER") or os.environ.get("LOGNAME") or "admin"
        self.priv = os.environ.get("REPLAY_PRIV", "15") == "15"
        self.paging = True
        self.ignore_setup = os.environ.get("REPLAY_NO_SETUP") == "1"
        self.config = False
        self.tty = os.isatty(0)
        self.home = os.environ.get("HOME", "/tmp")
        self.state = os.path.join(self.home, "replay-%s.cfg" % self.vendor)
        if os.path.exists(self.state):
            with open(self.state, encoding="utf-8") as f:
                self.out["show-config"] = f.read()

    def write(self, s):
        os.write(1, s.encode())

    def fill(self, text):
        now = time.strftime("%H:%M:%S UTC %a %b %d %Y", time.gmtime()) + " (%d)" % time.time_ns()
        if self.vendor == "junos":
            now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()) + " (%d)" % time.time_ns()
        return text.replace("{now}", now).replace("{user}", self.user)

    def prompt(self):
        if self.v["style"] == "ios":
            return "%s%s%s" % (self.host, "(config)" if self.config else "", "#" if self.priv else ">")
        if self.config:
            return "[edit]\n%s@%s# " % (self.user, self.host)
        return "%s@%s> " % (self.user, self.host)

    def readline(self, echo=True):
        if not self.tty:
            line = sys.stdin.readline()
            return None if line == "" else line.rstrip("\r\n")
        buf = b""
        while True:
            c = os.read(0, 1)
            if not c or c == b"\x04":
                return None
            if c in (b"\r", b"\n"):
                self.write("\n")
                return buf.decode(errors="replace")
            if c in (b"\x7f", b"\x08"):
                if buf:
                    buf = buf[:-1]
                    if echo:
                        self.write("\b \b")
                continue
            buf += c
            if echo:
                os.write(1, c)

    def page(self, text):
        lines = text.split("\n")
        if text.endswith("\n"):
            lines = lines[:-1]
        if not self.paging or not self.tty or len(lines) <= PAGE:
            self.write(text)
            return
        at = 0
        while at < len(lines):
            chunk = lines[at:at + PAGE - 1]
            self.write("\n".join(chunk) + "\n")
            at += len(chunk)
            if at >= len(lines):
                break
            self.write(self.v["pager"].format(a=at - len(chunk) + 1, b=at))
            with open(os.path.join(self.home, "replay-paged.log"), "a", encoding="utf-8") as f:
                f.write("paged after line %d\n" % at)
            c = os.read(0, 1)
            # the device wipes its pager prompt: IOS-style backspaces, Junos a carriage return,
            # PAN-OS (less) a carriage return and erase-line
            n = len(self.v["pager"])
            self.write({"ios": "\b" * n + " " * n + "\b" * n, "junos": "\r" + " " * n + "\r",
                        "panos": "\r\x1b[K"}[self.v["style"]])
            if c in (b"q", b"Q", b""):
                return

    def error(self, cmd):
        word = cmd.split()[0] if cmd.split() else cmd
        if self.v["style"] == "ios":
            col = len(self.prompt()) + len(word)
            if self.vendor != "eos":
                self.write(" " * col + "^\n")
        self.write(self.v["error"].format(word=word) + "\n")

    def save_state(self):
        with open(self.state, "w", encoding="utf-8") as f:
            f.write(self.out["show-config"])

    def config_line(self, cmd):
        """One line in configuration mode: True when accepted."""
        if self.v["style"] == "ios":
            if cmd.split()[0] not in IOS_CONFIG_WORDS or len(cmd.split()) < 2 and cmd != "shutdown":
                return False
            lines = self.out["show-config"].rstrip("\n").split("\n")
            if cmd.startswith("no ") and cmd[3:] in lines:
                lines.remove(cmd[3:])
            elif not cmd.startswith("no ") and cmd not in lines:
                end = len(lines) - 1 if lines and lines[-1] == "end" else len(lines)
                lines.insert(end, cmd)
            self.out["show-config"] = "\n".join(lines) + "\n"
            self.save_state()
            return True
        # Junos and PAN-OS: set/delete statements are accepted, not applied in this emulation.
        return cmd.split()[0] in ("set", "delete") and len(cmd.split()) >= 3

    def run(self, cmd):
        cmd = " ".join(cmd.split())
        if not cmd:
            return True
        style = self.v["style"]
        if cmd in self.v["nopage"]:
            if not self.ignore_setup:
                self.paging = False
            return True
        if style == "ios" and cmd.startswith("terminal "):
            return True
        if style != "ios" and cmd.startswith("set cli "):
            return True
        if self.config:
            if style == "junos" and cmd == "rollback 0":
                self.write("load complete\n")
                return True
            if style == "panos" and cmd == "revert config":
                self.write("Config reverted\n")
                return True
            if cmd in ("end", "exit", "quit", "commit and-quit", "exit configuration-mode") or (
                    style == "ios" and cmd == "end"):
                if cmd == "commit and-quit":
                    self.write("commit complete\nExiting configuration mode\n")
                elif style != "ios":
                    self.write("Exiting configuration mode\n")
                self.config = False
                return True
            if cmd == "commit" and style != "ios":
                self.write("commit complete\n" if style == "junos" else "Commit job 5 is in progress. Use Ctrl+C to return to command prompt\n100%Configuration committed successfully\n")
                return True
            if self.config_line(cmd):
                return True
        if cmd in ("exit", "quit", "logout"):
            return False
        if style == "ios" and cmd == "enable":
            if self.priv:
                return True
            self.write("Password: ")
            got = self.readline(echo=False)
            if got is not None and got == self.head.get("secret"):
                self.priv = True
            else:
                self.write("% Access denied\n")
            return True
        if style == "ios" and cmd == "disable":
            self.priv = False
            return True
        if cmd in self.v["enter"] and (self.priv or style != "ios"):
            if style == "junos":
                self.write("warning: uncommitted changes will be discarded on exit\n"
                           "Entering configuration mode\n\n")
            elif style == "panos":
                self.write("Entering configuration mode\n")
            else:
                self.write("Enter configuration commands, one per line.  End with CNTL/Z.\n")
            self.config = True
            return True
        if style == "ios" and cmd in ("write memory", "copy running-config startup-config"):
            self.write("Building configuration...\n[OK]\n" if self.priv else "")
            return True
        if cmd == self.v["show"] and (self.priv or style != "ios"):
            self.page(self.fill(self.out["show-config"]))
            return True
        if cmd in self.out and cmd != "show-config":
            self.page(self.fill(self.out[cmd]))
            return True
        self.error(cmd)
        return True

    def loop(self):
        if self.tty:
            attrs = termios.tcgetattr(0)
            attrs[3] &= ~(termios.ICANON | termios.ECHO)
            attrs[6][termios.VMIN] = 1
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(0, termios.TCSANOW, attrs)
        banner = self.head.get("banner", "")
        if banner:
            self.write("\n" + banner.replace("\\n", "\n") + "\n\n")
        while True:
            self.write(self.prompt())
            line = self.readline()
            if line is None or not self.run(line):
                self.write("\n")
                return


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: cli_replay.py TRANSCRIPT [-c COMMANDS]\n")
        return 2
    sh = Shell(sys.argv[1])
    if len(sys.argv) >= 4 and sys.argv[2] == "-c":
        sh.tty = False
        for cmd in sys.argv[3].split("\n"):
            if not sh.run(cmd):
                break
        return 0
    sh.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
