/* Neo4j of the local stack answers the Bolt handshake on its Bolt port with a 5.x version.
 * Deliberately raw sockets: this checks the server, not the project's Bolt client, which has
 * tests of its own. */
#define TEST_MAIN
#include "test.h"
#include "stack.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_tcp(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        CHECKF(0, "connect %s:%d failed: is the stack up? (scripts/stack up)", host, port);
    }
    return fd;
}

static void read_full(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        CHECKF(r > 0, "short read from Neo4j (%zu of %zu bytes)", got, n);
        got += (size_t)r;
    }
}

TEST(neo4j_bolt_handshake_answers_5x) {
    int fd = connect_tcp(STACK_NEO4J_HOST, STACK_NEO4J_PORT);
    /* Magic, then 5.8 down to 5.0, then 4.4, then two empty slots. */
    static const unsigned char hello[] = {
        0x60, 0x60, 0xB0, 0x17, 0x00, 0x08, 0x08, 0x05, 0x00, 0x00, 0x04, 0x04,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CHECK(write(fd, hello, sizeof hello) == (ssize_t)sizeof hello);
    unsigned char reply[4];
    read_full(fd, reply, sizeof reply);
    close(fd);
    CHECKF(reply[0] == 0 && reply[1] == 0, "reply %02x %02x %02x %02x", reply[0], reply[1],
           reply[2], reply[3]);
    CHECKF(reply[3] == 5, "major version %d, want 5", reply[3]);
    CHECKF(reply[2] <= 8, "minor version %d", reply[2]);
}

TEST(neo4j_refuses_unknown_versions) {
    int fd = connect_tcp(STACK_NEO4J_HOST, STACK_NEO4J_PORT);
    static const unsigned char hello[] = {
        0x60, 0x60, 0xB0, 0x17, 0x00, 0x00, 0x00, 0x63, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CHECK(write(fd, hello, sizeof hello) == (ssize_t)sizeof hello);
    unsigned char reply[4];
    read_full(fd, reply, sizeof reply);
    close(fd);
    CHECK(reply[0] == 0 && reply[1] == 0 && reply[2] == 0 && reply[3] == 0);
}
