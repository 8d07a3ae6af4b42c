/* null_lookup_server: the loopback floor of a lookup table. It answers every request
 * at once with a fixed value, doing nothing else: a thread per connection, a
 * blocking read and one write per request (a pipelined batch gets one write for
 * all its replies). With --epoll, one thread serves every connection from a
 * level-triggered epoll loop instead: epoll_wait, read and write per request, the
 * syscalls of any event-loop server (backstop-milter's socketmap among them).
 * scripts/bench-lookups measures postsrsd 1.10 and backstop-milter's socketmap
 * against it with the same client (bench/lookup_client.c).
 *   null_lookup_server [--epoll] tcp PORT [VALUE]        "get KEY\n" -> "200 VALUE\n"
 *   null_lookup_server [--epoll] socketmap PORT [VALUE]  "LEN:MAP KEY," -> "LEN:OK VALUE,"
 * Listens on 127.0.0.1:PORT until killed. A request it cannot parse closes that
 * connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum proto { TCP_TABLE, SOCKETMAP };

static enum proto proto;
static char answer[1100]; /* the reply to every request */
static size_t answer_len;

struct conn {
    int fd;
    size_t have; /* bytes in `in` not yet answered */
    char in[131072];
};

/* Bytes of the first whole request in buf, 0 when more are needed, -1 when the
 * bytes cannot be a request. */
static long whole_request(const char* buf, size_t len) {
    if (proto == TCP_TABLE) {
        const char* nl = memchr(buf, '\n', len);
        return nl ? (long)(nl - buf) + 1 : (len >= 65536 ? -1 : 0);
    }
    size_t i = 0, n = 0;
    while (i < len && buf[i] >= '0' && buf[i] <= '9' && i < 6)
        n = n * 10 + (size_t)(buf[i++] - '0');
    if (i == len) return 0;
    if (i == 0 || buf[i] != ':' || n > 100000) return -1;
    if (len < i + 1 + n + 1) return 0;
    return buf[i + 1 + n] == ',' ? (long)(i + 1 + n + 1) : -1;
}

/* After a read that returned n: answers every whole request, in one write. 0, or -1
 * when the connection must close. */
static int answer_all(struct conn* c, ssize_t n) {
    static __thread char out[65536];
    if (n <= 0) return -1;
    c->have += (size_t)n;
    size_t used = 0, out_len = 0;
    long whole;
    while ((whole = whole_request(c->in + used, c->have - used)) > 0) {
        used += (size_t)whole;
        if (out_len + answer_len > sizeof out) {
            if (write(c->fd, out, out_len) != (ssize_t)out_len) return -1;
            out_len = 0;
        }
        memcpy(out + out_len, answer, answer_len);
        out_len += answer_len;
    }
    if (whole < 0) return -1;
    /* A reply is ~60 bytes: an empty socket buffer always takes it whole. */
    if (out_len > 0 && write(c->fd, out, out_len) != (ssize_t)out_len) return -1;
    memmove(c->in, c->in + used, c->have - used);
    c->have -= used;
    return 0;
}

static void close_conn(struct conn* c) {
    close(c->fd);
    free(c);
}

static void* serve_thread(void* arg) {
    struct conn* c = arg;
    while (answer_all(c, read(c->fd, c->in + c->have, sizeof c->in - c->have)) == 0) {
    }
    close_conn(c);
    return NULL;
}

static struct conn* new_conn(int fd) {
    struct conn* c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    return c;
}

static int serve_threads(int ls) {
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            fprintf(stderr, "null_lookup_server: accept: %s\n", strerror(errno));
            return 1;
        }
        struct conn* c = new_conn(fd);
        if (c == NULL) continue;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, serve_thread, c) != 0) close_conn(c);
        pthread_attr_destroy(&attr);
    }
}

static int serve_epoll(int ls) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[64];
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) != 0) {
        fprintf(stderr, "null_lookup_server: epoll: %s\n", strerror(errno));
        return 1;
    }
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        for (int i = 0; i < n; ++i) {
            struct conn* c = events[i].data.ptr;
            if (c != NULL) {
                ssize_t got = read(c->fd, c->in + c->have, sizeof c->in - c->have);
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (answer_all(c, got) != 0) close_conn(c); /* close() leaves the epoll set */
                continue;
            }
            int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0 || (c = new_conn(fd)) == NULL) continue;
            struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) != 0) close_conn(c);
        }
    }
}

int main(int argc, char** argv) {
    int use_epoll = argc > 1 && strcmp(argv[1], "--epoll") == 0;
    argc -= use_epoll;
    argv += use_epoll;
    if (argc < 3 || argc > 4 ||
        (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "socketmap") != 0)) {
        fprintf(stderr, "usage: null_lookup_server [--epoll] tcp|socketmap PORT [VALUE]\n");
        return 2;
    }
    proto = strcmp(argv[1], "tcp") == 0 ? TCP_TABLE : SOCKETMAP;
    /* As long as an SRS0 answer, so both carry as many bytes as a real lookup. */
    const char* value = argc == 4 ? argv[3] : "SRS0=HHHH=TT=foreign.example=carol@fwd.ours.example";
    int len = proto == TCP_TABLE
                  ? snprintf(answer, sizeof answer, "200 %s\n", value)
                  : snprintf(answer, sizeof answer, "%zu:OK %s,", strlen(value) + 3, value);
    if (len < 0 || (size_t)len >= sizeof answer) {
        fprintf(stderr, "null_lookup_server: value too long\n");
        return 2;
    }
    answer_len = (size_t)len;
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, (struct sockaddr*)&sa, sizeof sa) != 0 || listen(ls, 128) != 0) {
        fprintf(stderr, "null_lookup_server: 127.0.0.1:%s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    return use_epoll ? serve_epoll(ls) : serve_threads(ls);
}
