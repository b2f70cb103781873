// epoll(7) for the benchmark's socket reader (Glibc's Swift module does not include it).
#include <sys/epoll.h>
