/* open/close microbenchmark for lanner-capture's overhead figures:
 * openclose PATH N  -> N x (openat(PATH, O_RDONLY) + close); prints the wall-clock and
 * the CPU (user + system, which includes the eBPF programs run in this process's
 * syscalls) nanoseconds per iteration: "wall cpu". On a busy machine the CPU figure is
 * the one that time-sharing does not inflate. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double cpu_ns(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 +
           (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PATH N\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    struct timespec a, b;
    double c0 = cpu_ns();
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) {
            perror(argv[1]);
            return 1;
        }
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f %.1f\n", ns / n, (cpu_ns() - c0) / n);
    return 0;
}
