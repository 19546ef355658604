/* The floor of a relay process on this machine, for scripts/bench/gateway-hop: one thread, one epoll set,
   non-blocking sockets; each connection accepted on LISTEN_PORT gets its own connection to UPSTREAM_PORT on
   127.0.0.1 and every byte read on one side is written to the other. No frames, no choice, no allocation per
   call: what sleeping in epoll_wait, waking, one read and one write each way cost, the least any event-loop
   relay (the gateway's included) can add to a call.
     cc -O2 scripts/bench/harness/epoll_relay.c -o /tmp/epoll_relay && /tmp/epoll_relay 7302 7301 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAX_FD = 65536 };
static int peer[MAX_FD];
static char buffer[1 << 20];

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return address;
}

static int watch(int epoll, int fd) {
    int one = 1;
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) || fcntl(fd, F_SETFL, O_NONBLOCK)) return -1;
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

static void drop(int fd) {
    int other = peer[fd];
    close(fd);
    close(other);
}

/* Writes all of [data, data + count) to fd, waiting out a full socket (the bench sends small calls). */
static int write_all(int fd, const char *data, ssize_t count) {
    while (count > 0) {
        ssize_t written = write(fd, data, count);
        if (written < 0 && errno != EAGAIN && errno != EINTR) return -1;
        if (written > 0) { data += written; count -= written; }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: epoll_relay LISTEN_PORT UPSTREAM_PORT\n"); return 2; }
    int listen_port = atoi(argv[1]), upstream_port = atoi(argv[2]), one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0), epoll = epoll_create1(0);
    struct sockaddr_in address = loopback(listen_port);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    if (listener < 0 || epoll < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)
        || bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 64)
        || epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event)) { perror("epoll_relay: listening"); return 1; }
    fprintf(stderr, "epoll_relay listening on 127.0.0.1:%d, relaying to 127.0.0.1:%d\n", listen_port, upstream_port);
    for (;;) {
        struct epoll_event events[16];
        int ready = epoll_wait(epoll, events, 16, -1);
        if (ready < 0 && errno != EINTR) { perror("epoll_relay: epoll_wait"); return 1; }
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int caller = accept(listener, NULL, NULL), upstream = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in target = loopback(upstream_port);
                if (caller < 0 || upstream < 0 || caller >= MAX_FD || upstream >= MAX_FD
                    || connect(upstream, (struct sockaddr *)&target, sizeof target)
                    || watch(epoll, caller) || watch(epoll, upstream)) {
                    perror("epoll_relay: a new connection");
                    if (caller >= 0) close(caller);
                    if (upstream >= 0) close(upstream);
                    continue;
                }
                peer[caller] = upstream;
                peer[upstream] = caller;
                continue;
            }
            ssize_t count = read(fd, buffer, sizeof buffer);
            if (count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR)) { drop(fd); continue; }
            if (count > 0 && write_all(peer[fd], buffer, count)) drop(fd);
        }
    }
}
