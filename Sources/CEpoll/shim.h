// epoll(7) for the benchmark's socket reader (Glibc's Swift module does not include it), and a
// read that also returns the kernel's receive timestamp (the CMSG macros are not visible to Swift).
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sched.h>

/// Asks the kernel to stamp every packet this socket receives with the time it arrived
/// (SO_TIMESTAMPNS, CLOCK_REALTIME).
static inline int bench_enable_receive_timestamps(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

/// read(2) through recvmsg(2): also stores in `*arrived_ns` when the last of the bytes read
/// arrived at the socket (CLOCK_REALTIME nanoseconds), or 0 when the kernel gave no timestamp.
static inline long bench_read_stamped(int fd, void *buffer, size_t count, int64_t *arrived_ns) {
    struct iovec vector = { buffer, count };
    union { char bytes[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    long got = recvmsg(fd, &message, 0);
    *arrived_ns = 0;
    if (got <= 0) return got;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec stamp;
            memcpy(&stamp, CMSG_DATA(header), sizeof stamp);
            *arrived_ns = (int64_t)stamp.tv_sec * 1000000000 + stamp.tv_nsec;
        }
    }
    return got;
}

/// CLOCK_REALTIME in nanoseconds: the clock of the receive timestamps.
static inline int64_t bench_realtime_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/// Moves the calling thread to SCHED_IDLE (it runs only when no other thread wants a core), or
/// back to SCHED_OTHER.
static inline int bench_set_idle_priority(int idle) {
    struct sched_param parameters;
    memset(&parameters, 0, sizeof parameters);
    return sched_setscheduler(0, idle ? 5 /* SCHED_IDLE */ : SCHED_OTHER, &parameters);
}

#include <sys/resource.h>

/// The soft limit on open files (`ulimit -n`) of this process.
static inline long bench_open_files_limit(void) {
    struct rlimit limit;
    return getrlimit(RLIMIT_NOFILE, &limit) == 0 ? (long)limit.rlim_cur : -1;
}
