/* lookup_client: lookups per second over ONE connection with ONE request
 * outstanding, as Postfix asks a tcp_table or socketmap table. Each request goes out
 * in one write (as Postfix's flush does), without TCP_NODELAY (Postfix sets none),
 * and the next leaves only when the whole reply is in. scripts/bench-lookups runs it
 * against postsrsd 1.10, backstop-milter's socketmap and null_lookup_server
 * (docs/PERFORMANCE.md).
 *   lookup_client tcp HOST PORT COUNT KEY           tcp_table: "get KEY\n" -> "200 ...\n"
 *   lookup_client socketmap HOST PORT COUNT MAP KEY socketmap: "LEN:MAP KEY," -> "LEN:OK ...,"
 * A reply other than 200 / OK is an error: the run stops and exits 1, so a rate is
 * never measured on refusals. COUNT/10 untimed lookups warm the path first. Prints
 * one line: lookups, seconds, lookups/s, round trip p50/p99 in microseconds, the
 * client's own CPU per lookup, and the last reply.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum proto { TCP_TABLE, SOCKETMAP };

static char reply[70000];
static size_t reply_len;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const char* host, const char* port) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "lookup_client: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "lookup_client: connect %s:%s: %s\n", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Length of the first whole reply in reply[0, reply_len), or 0 when more bytes are
 * needed, or -1 when the bytes cannot be a reply. */
static long whole_reply(enum proto p) {
    if (p == TCP_TABLE) {
        char* nl = memchr(reply, '\n', reply_len);
        return nl ? (long)(nl - reply) + 1 : 0;
    }
    size_t i = 0, len = 0;
    while (i < reply_len && reply[i] >= '0' && reply[i] <= '9' && i < 6)
        len = len * 10 + (size_t)(reply[i++] - '0');
    if (i == reply_len) return 0;
    if (i == 0 || reply[i] != ':') return -1;
    if (reply_len < i + 1 + len + 1) return 0;
    return reply[i + 1 + len] == ',' ? (long)(i + 1 + len + 1) : -1;
}

/* One request, one reply: 0, or -1 after saying why. */
static int lookup(int fd, enum proto p, const char* req, size_t req_len) {
    if (write(fd, req, req_len) != (ssize_t)req_len) {
        fprintf(stderr, "lookup_client: write: %s\n", strerror(errno));
        return -1;
    }
    reply_len = 0;
    for (;;) {
        ssize_t n = read(fd, reply + reply_len, sizeof reply - reply_len);
        if (n <= 0) {
            fprintf(stderr, "lookup_client: read: %s\n",
                    n == 0 ? "connection closed" : strerror(errno));
            return -1;
        }
        reply_len += (size_t)n;
        long whole = whole_reply(p);
        if (whole < 0 || (whole == 0 && reply_len == sizeof reply)) {
            fprintf(stderr, "lookup_client: not a reply: %.*s\n", (int)reply_len, reply);
            return -1;
        }
        if (whole == 0) continue;
        if ((size_t)whole != reply_len) {
            fprintf(stderr, "lookup_client: more than one reply to one request\n");
            return -1;
        }
        const char* data = reply;
        if (p == SOCKETMAP) data = memchr(reply, ':', reply_len) + 1;
        if (strncmp(data, p == TCP_TABLE ? "200 " : "OK ", p == TCP_TABLE ? 4 : 3) != 0) {
            fprintf(stderr, "lookup_client: refused: %.*s\n", (int)reply_len, reply);
            return -1;
        }
        return 0;
    }
}

static int by_value(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char** argv) {
    enum proto p;
    if (argc == 6 && strcmp(argv[1], "tcp") == 0) {
        p = TCP_TABLE;
    } else if (argc == 7 && strcmp(argv[1], "socketmap") == 0) {
        p = SOCKETMAP;
    } else {
        fprintf(stderr,
                "usage: lookup_client tcp HOST PORT COUNT KEY\n"
                "       lookup_client socketmap HOST PORT COUNT MAP KEY\n");
        return 2;
    }
    long count = atol(argv[4]);
    if (count < 1) {
        fprintf(stderr, "lookup_client: COUNT must be a positive number\n");
        return 2;
    }
    /* The request, built once. Keys are sent as given: the caller passes a key
     * tcp_table needs no %XX encoding for. */
    char req[1200];
    int req_len;
    if (p == TCP_TABLE) {
        req_len = snprintf(req, sizeof req, "get %s\n", argv[5]);
    } else {
        size_t data_len = strlen(argv[5]) + 1 + strlen(argv[6]);
        req_len = snprintf(req, sizeof req, "%zu:%s %s,", data_len, argv[5], argv[6]);
    }
    if (req_len < 0 || (size_t)req_len >= sizeof req) {
        fprintf(stderr, "lookup_client: key too long\n");
        return 2;
    }
    int fd = connect_to(argv[2], argv[3]);
    if (fd < 0) return 1;

    for (long i = 0; i < count / 10; ++i)
        if (lookup(fd, p, req, (size_t)req_len) != 0) return 1;
    double* rtt = malloc((size_t)count * sizeof *rtt);
    if (!rtt) return 1;
    double cpu0 = cpu_seconds(), t0 = now_seconds(), t = t0;
    for (long i = 0; i < count; ++i) {
        if (lookup(fd, p, req, (size_t)req_len) != 0) return 1;
        double t1 = now_seconds();
        rtt[i] = t1 - t;
        t = t1;
    }
    double elapsed = t - t0, cpu = cpu_seconds() - cpu0;
    close(fd);
    if (p == TCP_TABLE) --reply_len; /* the newline */
    qsort(rtt, (size_t)count, sizeof *rtt, by_value);
    printf(
        "%ld lookups  %.3f s  %.0f lookups/s  rtt p50 %.1f us  p99 %.1f us  client cpu %.1f "
        "us/lookup  reply %.*s\n",
        count, elapsed, (double)count / elapsed, rtt[count / 2] * 1e6,
        rtt[(long)((double)count * 0.99)] * 1e6, cpu * 1e6 / (double)count, (int)reply_len, reply);
    free(rtt);
    return 0;
}
