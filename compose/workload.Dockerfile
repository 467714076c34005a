# The demo's workload (scripts/demo): Debian with busybox's nc, nslookup and wget, so a
# container can misbehave in the ways Falco's rules describe. BASE is debian:bookworm-slim
# where a registry answers; scripts/lab-images passes its locally made base instead.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN if ! command -v busybox >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends busybox \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && for applet in nc nslookup wget; do ln -s /bin/busybox /usr/local/bin/$applet; done
CMD ["sleep", "infinity"]
