# Sourced by the bench scripts: `c_project DIR FILES` writes a small C project (FILES
# generated sources of 40 functions each, and a Makefile with `all` and `clean`) into
# DIR, the "compiling a C project" workload of issue #3.
c_project() {
    local dir=$1 files=$2 i j
    mkdir -p "$dir"
    for i in $(seq "$files"); do
        { echo "#include <stdio.h>"; echo "#include <string.h>"; echo "#include <stdlib.h>"
          for j in $(seq 40); do echo "int f${i}_$j(int x){char b[64];snprintf(b,sizeof b,\"%d\",x*$j);return (int)strlen(b)+atoi(b)%$((j+1));}"; done
        } >"$dir/f$i.c"
    done
    printf 'OBJS=%s\nall: $(OBJS)\n%%.o: %%.c\n\tgcc -O2 -c $< -o $@\nclean:\n\trm -f *.o\n' \
        "$(cd "$dir" && ls ./*.c | sed 's|^\./||; s/\.c$/.o/' | tr '\n' ' ')" >"$dir/Makefile"
}
