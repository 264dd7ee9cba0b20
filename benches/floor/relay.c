/* relay: the floor of `make bench` (benches/compare.rs), the least a TCP-to-serial relay does.
 *
 *     relay PORT=DEVICE [PORT=DEVICE ...]
 *
 * One process, one poll() loop over every listener and session, no threads, no fork. Each
 * PORT listens on 127.0.0.1 and serves one client at a time; a client arriving while the port
 * is busy is accepted and closed at once. Per client the DEVICE is opened
 * O_RDWR|O_NOCTTY|O_NONBLOCK and made raw (cfmakeraw, 115200), TCP_NODELAY is set, and bytes
 * are copied both ways through two 16 KiB buffers allocated for the session. A read is
 * written out at once; poll() waits for a sink only when its write would block, and a source
 * is not read while its buffer still holds bytes (back-pressure, nothing buffered beyond).
 *
 * What it leaves out on purpose: locks, access control, logging, modem lines, idle timers.
 * It is what modemd is measured against, not a server anyone should run.
 *
 * Built by the benchmark with `cc -O2`; ends on SIGTERM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define BUF (16 * 1024)

/* Bytes read from a source and not yet written to the sink: buf[off..len). */
struct queue {
    char *buf;
    size_t off, len;
};

struct port {
    int lfd;
    const char *dev;
    int cfd, dfd; /* -1 while no session */
    struct queue up, down; /* up: client -> device, down: device -> client */
};

static void die(const char *what, const char *arg) {
    fprintf(stderr, "relay: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
    exit(1);
}

static void end_session(struct port *p) {
    close(p->cfd);
    close(p->dfd);
    free(p->up.buf);
    free(p->down.buf);
    p->cfd = p->dfd = -1;
    p->up.buf = p->down.buf = NULL;
}

static ssize_t put(int fd, const char *b, size_t n, int sock) {
    return sock ? send(fd, b, n, MSG_NOSIGNAL) : write(fd, b, n);
}

/* Moves bytes from `from` to `to` through `q`: first what is pending, then (if `readable`, or
 * once pending bytes are gone: the source was not polled meanwhile) one read, written out at
 * once; reads again only while reads fill the whole buffer.
 * Returns -1 when the session must end (EOF, error), else 0. */
static int pump(int from, int to, int to_sock, struct queue *q, int readable) {
    for (;;) {
        if (q->off < q->len)
            readable = 1;
        while (q->off < q->len) {
            ssize_t n = put(to, q->buf + q->off, q->len - q->off, to_sock);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return errno == EAGAIN ? 0 : -1;
            }
            q->off += (size_t)n;
        }
        if (!readable)
            return 0;
        ssize_t n = read(from, q->buf, BUF);
        if (n == 0)
            return -1;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        q->off = 0;
        q->len = (size_t)n;
        readable = n == BUF;
    }
}

static void start_session(struct port *p) {
    int c = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    if (p->cfd >= 0) { /* busy */
        close(c);
        return;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int d = open(p->dev, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    struct termios t;
    if (d < 0 || tcgetattr(d, &t) < 0) {
        if (d >= 0)
            close(d);
        close(c);
        return;
    }
    cfmakeraw(&t);
    cfsetspeed(&t, B115200);
    tcsetattr(d, TCSANOW, &t);
    p->cfd = c;
    p->dfd = d;
    p->up = (struct queue){malloc(BUF), 0, 0};
    p->down = (struct queue){malloc(BUF), 0, 0};
    if (!p->up.buf || !p->down.buf)
        end_session(p);
}

static int listen_on(const char *port) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0)
        die("listen on", port);
    return s;
}

int main(int argc, char **argv) {
    int n = argc - 1;
    if (n < 1) {
        fprintf(stderr, "usage: relay PORT=DEVICE [PORT=DEVICE ...]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct port *ports = calloc((size_t)n, sizeof *ports);
    /* Per port three slots: listener, client, device (fd -1: poll ignores the slot). */
    struct pollfd *pfd = calloc((size_t)n * 3, sizeof *pfd);
    if (!ports || !pfd)
        die("calloc", NULL);
    for (int i = 0; i < n; i++) {
        char *eq = strchr(argv[i + 1], '=');
        if (!eq) {
            fprintf(stderr, "relay: expected PORT=DEVICE, got %s\n", argv[i + 1]);
            return 2;
        }
        *eq = 0;
        ports[i] = (struct port){listen_on(argv[i + 1]), eq + 1, -1, -1, {0}, {0}};
    }
    for (;;) {
        for (int i = 0; i < n; i++) {
            struct port *p = &ports[i];
            pfd[3 * i] = (struct pollfd){p->lfd, POLLIN, 0};
            int up_pending = p->cfd >= 0 && p->up.off < p->up.len;
            int down_pending = p->cfd >= 0 && p->down.off < p->down.len;
            pfd[3 * i + 1] = (struct pollfd){
                p->cfd, (short)((up_pending ? 0 : POLLIN) | (down_pending ? POLLOUT : 0)), 0};
            pfd[3 * i + 2] = (struct pollfd){
                p->dfd, (short)((down_pending ? 0 : POLLIN) | (up_pending ? POLLOUT : 0)), 0};
        }
        if (poll(pfd, (nfds_t)n * 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll", NULL);
        }
        for (int i = 0; i < n; i++) {
            struct port *p = &ports[i];
            short l = pfd[3 * i].revents, c = pfd[3 * i + 1].revents, d = pfd[3 * i + 2].revents;
            if (p->cfd >= 0 && (c | d)) {
                short in = POLLIN | POLLHUP | POLLERR, out = POLLOUT | POLLHUP | POLLERR;
                int end = 0;
                if ((c & in) || (d & out))
                    end |= pump(p->cfd, p->dfd, 0, &p->up, (c & in) != 0);
                if (!end && ((d & in) || (c & out)))
                    end |= pump(p->dfd, p->cfd, 1, &p->down, (d & in) != 0);
                if (end)
                    end_session(p);
            }
            if (l & POLLIN)
                start_session(p);
        }
    }
}
