/* crash_server.c — listens, accepts, then dereferences NULL: SIGSEGV mid-exchange. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 16) < 0)
        return 1;
    printf("listening on port %s\n", argv[1]);
    int c = accept(s, NULL, NULL);
    int *p = NULL;
    *p = c; /* the bug */
    return 0;
}
