/* One JSON message per SOCK_SEQPACKET datagram, with fds passed by SCM_RIGHTS. */
#include "internal.h"

#include <string.h>
#include <sys/socket.h>

int sbx_msg_send(int sock, json_t *msg, const int *fds, size_t n_fds, hks_error *err)
{
    if (n_fds > SBX_MSG_MAX_FDS)
        return hks_fail(err, 0, "more than %d fds in one message", SBX_MSG_MAX_FDS);
    cleanup_free char *text = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (!text)
        return hks_fail(err, ENOMEM, "encode message");
    size_t len = strlen(text);
    if (len > SBX_MSG_MAX)
        return hks_fail(err, EMSGSIZE, "message of %zu bytes", len);
    struct iovec iov = {.iov_base = text, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * (size_t)SBX_MSG_MAX_FDS)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n_fds > 0) {
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return hks_fail(err, errno, "send message");
    return 0;
}

int sbx_msg_recv(int sock, json_t **msg, int *fds, size_t *n_fds, hks_error *err)
{
    *msg = NULL;
    *n_fds = 0;
    cleanup_free char *buf = malloc((size_t)SBX_MSG_MAX + 1);
    if (!buf)
        return hks_fail(err, ENOMEM, "message buffer");
    struct iovec iov = {.iov_base = buf, .iov_len = (size_t)SBX_MSG_MAX + 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * (size_t)SBX_MSG_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf)};
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return hks_fail(err, errno, "receive message");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *received = (int *)(void *)CMSG_DATA(c);
        for (size_t i = 0; i < count; i++) {
            if (*n_fds < SBX_MSG_MAX_FDS)
                fds[(*n_fds)++] = received[i];
            else
                close(received[i]);
        }
    }
    if (n == 0)
        return 0; /* peer closed: *msg stays NULL */
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n > SBX_MSG_MAX) {
        for (size_t i = 0; i < *n_fds; i++)
            close(fds[i]);
        *n_fds = 0;
        return hks_fail(err, EMSGSIZE, "message larger than %d bytes or with too many fds",
                        SBX_MSG_MAX);
    }
    json_error_t jerr;
    *msg = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!*msg || !json_is_object(*msg)) {
        json_decref(*msg);
        *msg = NULL;
        for (size_t i = 0; i < *n_fds; i++)
            close(fds[i]);
        *n_fds = 0;
        return hks_fail(err, 0, "malformed message: %s", jerr.text);
    }
    return 0;
}
