/* Event generator for lanner-capture's kernel-to-userspace rate:
 * events N  -> N x prctl(PR_SET_DUMPABLE, 1), the cheapest syscall the sensor records
 * (one header-only record each); prints the events per second it produced. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
            perror("prctl");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.0f\n", n / s);
    return 0;
}
