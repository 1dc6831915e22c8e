"""Attack: userfaultfd().

userfaultfd makes kernel races easy to win (a classic exploit primitive).
With UFFD_USER_MODE_ONLY it is allowed to unprivileged users even when
vm.unprivileged_userfaultfd=0, so without a seccomp rule this SUCCEEDS.
Must fail with EPERM (or the profile's deny errno / SIGSYS)."""
import os

from _common import attempt, deny_errnos, finish, gate, sysc

gate("userfaultfd")
deny = deny_errnos()
UFFD_USER_MODE_ONLY = 1

results = {
    "userfaultfd(UFFD_USER_MODE_ONLY)": attempt(
        lambda: sysc("userfaultfd", os.O_CLOEXEC | os.O_NONBLOCK | UFFD_USER_MODE_ONLY)),
    "userfaultfd(0)": attempt(lambda: sysc("userfaultfd", os.O_CLOEXEC | os.O_NONBLOCK)),
}
finish("userfaultfd", results, deny)
