"""`go goroutine ID CMD`: run a gdb command in a parked goroutine's context, live.

A parked goroutine has no thread; its pc/sp/bp are saved in g.sched. gdb can only show
frames of a thread, so the goroutine's registers are lent to the selected thread for the
length of CMD and the thread's own are put back afterwards. That is safe only because
the program is stopped all that time, so everything here keeps it so:

- CMD is refused when it would resume the program (continue, step, finish, detach, ...)
  or run commands we cannot see into (python, source, pipe, thread apply, user-defined):
  a borrowed context cannot be resumed. gdb names the command (`help WORD`), so
  abbreviations and aliases are caught as gdb itself reads them.
- CMD is refused when an expression in it assigns (`set var x = 1`, `p $rip = 0`, `x++`),
  and `may-call-functions` is off while it runs, so gdb itself refuses `print f()`.
  (gdb refuses to switch may-write-memory/-registers while a process is attached.)
  A tripwire on gdb's cont/inferior_call/memory_changed events reports anything missed.
- Afterwards every register of the thread is written back on its frame 0 (never on a
  frame CMD selected: there `$rip` is the return-address slot in memory), checked, and
  retried through a Ctrl-C; then the user's thread and frame are selected again.

Why not a Python unwinder instead of writing registers: frame 0's registers always come
from the thread itself (an unwinder only tells a frame's caller), and Go's locals are
located with DW_OP_call_frame_cfa, which gdb computes only for frames its own DWARF
unwinder unwound. An unwinder would give a goroutine without `frame 0` or `info locals`.
"""
from __future__ import annotations

import re
from typing import Optional

import gdb

from ..errors import GoExtError

# written to lend the context, and what is compared and put back afterwards
LENT = ("rip", "rsp", "rbp")
SAVED = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
         "r12", "r13", "r14", "r15", "rip", "eflags", "orig_rax", "fs_base", "gs_base")
_U64 = (1 << 64) - 1

# commands (gdb's names; gdb_command_name finds them under any alias or abbreviation)
# that resume the program, end it or leave it, or change its state
RESUMING = frozenset("""continue next step stepi nexti finish until advance jump run start
starti signal queue-signal kill detach attach call return reverse-continue reverse-next
reverse-step reverse-stepi reverse-nexti reverse-finish record checkpoint restart
disconnect target interrupt compile quit tstart core-file exec-file file""".split())
# commands that run other commands, which this check cannot see into
WRAPPERS = frozenset("""python python-interactive guile guile-repl source eval pipe faas
taas tfaas if while define""".split())
# ... and prefixes whose `apply` subcommand does
_APPLY_PREFIXES = ("thread", "frame")
# gdb allows changing only this one while a process is attached (may-write-memory and
# may-write-registers: "Cannot change this setting while the inferior is running")
_PERMISSIONS = ("may-call-functions",)


def _help(word: str) -> Optional[str]:
    try:
        return gdb.execute("help " + word, to_string=True)
    except gdb.error:
        return None


_known: dict = {}   # help text -> gdb's name, for the commands named above


def gdb_command_name(word: str) -> Optional[str]:
    """Which of the commands named above a command word is, as gdb reads it ('c' and
    'fg' are continue, 'deta' is detach): the one whose `help` text is the same.
    'user-defined' for a command of the user's; None otherwise."""
    if not _known:
        for name in sorted(RESUMING | WRAPPERS | {"with", "go"} | set(_APPLY_PREFIXES)):
            text = _help(name)
            if text:
                _known.setdefault(text, name)
    text = _help(word)
    if text is None:
        return None
    if text.lstrip().startswith("User-defined"):
        return "user-defined"
    return _known.get(text)


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
# =, +=, <<= ... (not ==, !=, <=, >=) and ++/-- next to an operand (not the `--` of options)
_ASSIGNS = re.compile(r"(?<![=!<>])=(?!=)|<<=|>>=|\+\+|\w--|--[\w$(*]")


def assigns(text: str) -> bool:
    """Does an expression in text assign (a write to memory or a register)?"""
    return bool(_ASSIGNS.search(_STRINGS.sub('""', text)))


def refusal(command: str) -> Optional[str]:
    """Why CMD cannot run in a borrowed goroutine context, or None."""
    text = command.strip()
    if text.startswith("|"):
        return "pipe runs commands of its own, which are not checked here"
    m = re.match(r"([A-Za-z][\w-]*)\s*(.*)", text, re.S)
    if not m:
        return None
    word, rest = m.group(1), m.group(2)
    name = gdb_command_name(word)
    if name == "go":
        return None   # our own views read; a probe refuses itself (GdbTarget.control)
    if name == "with":
        setting, sep, inner = rest.partition("--")
        return refusal(inner) if sep else None
    if name in RESUMING:
        return f"`{name}` would resume or change the program, and a goroutine's borrowed " \
               "context cannot be resumed"
    if name == "user-defined" or name in WRAPPERS:
        return f"`{word}` runs commands of its own, which are not checked here"
    sub = rest.split()[:1]
    if name in _APPLY_PREFIXES and sub and "apply".startswith(sub[0]):
        return f"`{name} apply` runs commands of its own, which are not checked here"
    if assigns(rest):
        return "an assignment would write the program's memory or registers, and nothing " \
               "is written in a goroutine's borrowed context"
    return None


def _read(names) -> dict:
    """The selected thread's own registers (frame 0), unsigned."""
    f = gdb.newest_frame()
    out = {}
    for n in names:
        try:
            out[n] = int(f.read_register(n)) & _U64
        except (gdb.error, ValueError):
            continue
    return out


def _write_frame0(regs: dict) -> None:
    """Write registers of the selected thread itself: on frame 0, whatever is selected."""
    for r, v in regs.items():
        gdb.execute("select-frame 0", to_string=True)
        gdb.execute(f"set ${r} = {v:#x}", to_string=True)


def _retried(action, attempts: int = 8):
    """Run action through Ctrl-Cs (a Quit raised by a SIGINT that came during CMD)."""
    last: Optional[BaseException] = None
    for _ in range(attempts):
        try:
            return action()
        except KeyboardInterrupt as e:
            last = e
        except gdb.error as e:
            if "Quit" not in str(e):
                raise
            last = e
    raise GoExtError(f"could not finish after repeated interrupts ({last})")


class _Selection:
    """The user's selected thread and frame, selected again on exit."""

    def __init__(self):
        self.thread = gdb.selected_thread()
        try:
            self.frame = gdb.selected_frame()
            self.level = self.frame.level()
        except gdb.error:
            self.frame, self.level = None, 0

    def restore(self) -> None:
        if self.thread is None or not self.thread.is_valid():
            return
        self.thread.switch()
        if self.frame is not None and self.frame.is_valid():
            self.frame.select()
        else:
            gdb.execute(f"select-frame {self.level}", to_string=True)


class _Permissions:
    """may-call-functions off, then as it was."""

    def __init__(self):
        self.saved: dict = {}

    def __enter__(self):
        for p in _PERMISSIONS:
            try:
                self.saved[p] = gdb.parameter(p)
                gdb.execute(f"set {p} off", to_string=True)
            except (gdb.error, RuntimeError):
                self.saved.pop(p, None)
        return self

    def __exit__(self, *exc):
        for p, v in self.saved.items():
            _retried(lambda p=p, v=v: gdb.execute(f"set {p} {'on' if v else 'off'}",
                                                  to_string=True))
        return False


class _Tripwire:
    """Notices the program resumed, called into or its memory written (refusal() and
    may-call-functions should prevent all three)."""
    EVENTS = ("cont", "inferior_call", "memory_changed")

    def __init__(self):
        self.fired: list = []

    def _hit(self, ev=None):
        addr = getattr(ev, "address", None)
        self.fired.append("memory written at %#x" % int(addr) if addr is not None
                          else "the program resumed")

    def __enter__(self):
        for name in self.EVENTS:
            reg = getattr(gdb.events, name, None)
            if reg is not None:
                reg.connect(self._hit)
        return self

    def __exit__(self, *exc):
        for name in self.EVENTS:
            reg = getattr(gdb.events, name, None)
            if reg is not None:
                reg.disconnect(self._hit)
        return False


# a goroutine's context is lent now (no nesting, no probes in it)
active = False


def _guarded(command: str) -> None:
    global active
    active = True
    try:
        with _Tripwire() as trip, _Permissions():
            try:
                gdb.execute(command)
            except gdb.error as e:   # gdb's own message, as one line of ours
                raise GoExtError(str(e).strip().splitlines()[0] if str(e).strip()
                                 else "the command failed") from None
    finally:
        active = False
    if trip.fired:
        raise GoExtError(f"{trip.fired[0]} in a goroutine's borrowed context; the "
                         "program's state may be damaged")


def _check(command: str) -> None:
    if active:
        raise GoExtError("already in a goroutine's context")
    why = refusal(command)
    if why:
        raise GoExtError(why)


def run_on_thread(thread, command: str) -> None:
    """CMD on the thread a running goroutine is on (its own registers, nothing lent)."""
    _check(command)
    sel = _Selection()
    try:
        thread.switch()
        _guarded(command)
    finally:
        _retried(sel.restore)


def run_borrowed(g, command: str) -> None:
    """CMD with the goroutine's pc/sp/bp lent to the selected thread; everything put back."""
    _check(command)
    sel = _Selection()
    thread = gdb.selected_thread()
    if thread is None:
        raise GoExtError("no thread is selected")
    saved = _read(SAVED)
    if any(r not in saved for r in LENT):
        raise GoExtError("cannot read the selected thread's registers")
    try:
        # g.bp: the frame pointer saved with pc/sp (sched.bp, or syscallbp in a syscall)
        _write_frame0({"rip": g.pc, "rsp": g.sp, "rbp": g.bp})
        _guarded(command)
    finally:
        _retried(lambda: _put_back(thread, saved))
        _retried(sel.restore)


def _put_back(thread, saved: dict) -> None:
    """The thread's registers exactly as saved, checked."""
    thread.switch()
    now = _read(saved)
    changed = {r: v for r, v in saved.items() if now.get(r) != v}
    if changed:
        _write_frame0(changed)
    still = {r for r, v in _read(saved).items() if v != saved[r]}
    if still:
        raise GoExtError("could not restore register(s) " + ", ".join(sorted(still)) +
                         " of the selected thread; do not detach or continue")
