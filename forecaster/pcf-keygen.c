/*
 * pcf-keygen -- makes a CurveZMQ key pair for the publisher or a client.
 *
 * `pcf-keygen NAME [COMMENT]` writes NAME.key (both keys, mode 0600: give it
 * to the program that owns the identity) and NAME.pub (the public key: give
 * it to the other side; for a client, append its public-key value to the
 * publisher's allowlist).  Existing files are never overwritten.
 * Exit status: 0 written, 1 failed, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "publish_auth.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || argv[1][0] == '-') {
        fputs("usage: pcf-keygen NAME [COMMENT]\n"
              "writes NAME.key (secret, mode 0600) and NAME.pub (public) for CurveZMQ\n",
              stderr);
        return 2;
    }
    pcf_error err;
    if (publish_auth_write_keypair(argv[1], argc == 3 ? argv[2] : argv[1], &err) != PCF_OK) {
        fprintf(stderr, "pcf-keygen: %s\n", err.msg);
        return 1;
    }
    char pub[41];
    char path[4096];
    snprintf(path, sizeof path, "%s.pub", argv[1]);
    if (publish_auth_load_key(path, pub, NULL, &err) != PCF_OK) {
        fprintf(stderr, "pcf-keygen: %s\n", err.msg);
        return 1;
    }
    /* The allowlist line for this key, ready to paste. */
    printf("%s %s\n", pub, argc == 3 ? argv[2] : argv[1]);
    return 0;
}
