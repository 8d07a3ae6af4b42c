/* null_lookup_server: the loopback floor of a lookup table. It answers every request
 * at once with a fixed value, doing nothing else: a thread per connection, a
 * blocking read and one write per request (a pipelined batch gets one write for
 * all its replies). scripts/bench-lookups measures postsrsd 1.10 and
 * backstop-milter's socketmap against it with the same client (bench/lookup_client.c).
 *   null_lookup_server tcp PORT [VALUE]        tcp_table: "get KEY\n" -> "200 VALUE\n"
 *   null_lookup_server socketmap PORT [VALUE]  socketmap: "LEN:MAP KEY," -> "LEN:OK VALUE,"
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
#include <sys/socket.h>
#include <unistd.h>

enum proto { TCP_TABLE, SOCKETMAP };

static enum proto proto;
static char answer[1100]; /* the reply to every request */
static size_t answer_len;

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

static void* serve(void* arg) {
    int fd = (int)(long)arg;
    char in[131072], out[65536];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, in + have, sizeof in - have);
        if (n <= 0) break;
        have += (size_t)n;
        size_t used = 0, out_len = 0;
        long whole;
        while ((whole = whole_request(in + used, have - used)) > 0) {
            used += (size_t)whole;
            if (out_len + answer_len > sizeof out) {
                if (write(fd, out, out_len) != (ssize_t)out_len) goto done;
                out_len = 0;
            }
            memcpy(out + out_len, answer, answer_len);
            out_len += answer_len;
        }
        if (whole < 0) break;
        if (out_len > 0 && write(fd, out, out_len) != (ssize_t)out_len) break;
        memmove(in, in + used, have - used);
        have -= used;
    }
done:
    close(fd);
    return NULL;
}

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4 ||
        (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "socketmap") != 0)) {
        fprintf(stderr, "usage: null_lookup_server tcp|socketmap PORT [VALUE]\n");
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
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            fprintf(stderr, "null_lookup_server: accept: %s\n", strerror(errno));
            return 1;
        }
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, serve, (void*)(long)fd) != 0) close(fd);
        pthread_attr_destroy(&attr);
    }
}
