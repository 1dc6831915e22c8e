"""Attack: kernel keyrings (keyctl / add_key / request_key).

Keyrings are not namespaced by the sandbox's namespaces and have a long CVE
history. Without seccomp, KEYCTL_JOIN_SESSION_KEYRING and add_key succeed for
any user. Each must fail with EPERM (or the profile's deny errno / SIGSYS)."""
from _common import attempt, deny_errnos, finish, gate, sysc

gate("keyctl")
deny = deny_errnos()
KEYCTL_GET_KEYRING_ID, KEYCTL_JOIN_SESSION_KEYRING = 0, 1
KEY_SPEC_PROCESS_KEYRING, KEY_SPEC_USER_KEYRING = -2, -4

results = {
    "keyctl(JOIN_SESSION_KEYRING)": attempt(lambda: sysc("keyctl", KEYCTL_JOIN_SESSION_KEYRING, None, 0, 0, 0)),
    "keyctl(GET_KEYRING_ID user)": attempt(lambda: sysc("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 1, 0, 0)),
    "add_key(user)": attempt(lambda: sysc("add_key", b"user", b"hks-attack", b"secret", 6, KEY_SPEC_PROCESS_KEYRING)),
    "request_key(user)": attempt(lambda: sysc("request_key", b"user", b"hks-attack", None, 0)),
}
finish("keyctl", results, deny)
