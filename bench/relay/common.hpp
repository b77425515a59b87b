// What the two byte relays (relay.cpp on epoll, relay_uring.cpp on io_uring) share: the listener on
// 127.0.0.1 and the connection to PostgreSQL, over TCP or, when UPSTREAM_HOST is a directory (starts
// with '/', as libpq reads it), over its Unix socket DIR/.s.PGSQL.PORT.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace relay {

struct Upstream {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
};

// Parses UPSTREAM_HOST and UPSTREAM_PORT; false when the host is neither an IPv4 address nor a
// directory whose socket path fits.
inline bool parse_upstream(const char* host, const char* port, Upstream& u) {
  if (host[0] == '/') {
    auto* un = reinterpret_cast<sockaddr_un*>(&u.addr);
    un->sun_family = AF_UNIX;
    int n = std::snprintf(un->sun_path, sizeof un->sun_path, "%s/.s.PGSQL.%s", host, port);
    if (n < 0 || size_t(n) >= sizeof un->sun_path) return false;
    u.family = AF_UNIX;
    u.len = sizeof(sockaddr_un);
    return true;
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&u.addr);
  in->sin_family = AF_INET;
  in->sin_port = htons(uint16_t(std::atoi(port)));
  u.len = sizeof(sockaddr_in);
  return inet_pton(AF_INET, host, &in->sin_addr) == 1;
}

inline void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// A blocking connect (on this machine it completes at once), with TCP_NODELAY over TCP; -1 on
// failure.
inline int connect_upstream(const Upstream& u) {
  int fd = socket(u.family, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&u.addr), u.len) != 0) {
    close(fd);
    return -1;
  }
  if (u.family == AF_INET) nodelay(fd);
  return fd;
}

// The listener on 127.0.0.1:port (flags: SOCK_NONBLOCK or 0); exits the program on failure.
inline int listen_loopback(const char* port, int flags) {
  int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in la{};
  la.sin_family = AF_INET;
  la.sin_port = htons(uint16_t(std::atoi(port)));
  la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 || listen(fd, 4096) != 0) {
    std::perror("relay: listen");
    std::exit(1);
  }
  return fd;
}

}  // namespace relay
