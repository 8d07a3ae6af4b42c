/* null_libmilter: a libmilter filter that answers "continue" to everything and
 * changes nothing, negotiating the same steps, actions and macros backstop-milter
 * asked for when it ran on libmilter. scripts/bench-milter puts it behind Postfix
 * to measure what libmilter itself costs per message, next to backstop's own
 * protocol engine in the same run (docs/PERFORMANCE.md).
 *   null_libmilter inet:PORT@127.0.0.1   (or unix:/PATH: mode from the umask,
 *                                         so bench-milter sets the group)
 */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <string.h>

static sfsistat on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr) {
    (void)ctx, (void)host, (void)addr;
    return SMFIS_CONTINUE;
}
static sfsistat on_args(SMFICTX *ctx, char **argv) {
    (void)ctx, (void)argv;
    return SMFIS_CONTINUE;
}
static sfsistat on_header(SMFICTX *ctx, char *name, char *value) {
    (void)ctx, (void)name, (void)value;
    return SMFIS_CONTINUE;
}
static sfsistat on_step(SMFICTX *ctx) {
    (void)ctx;
    return SMFIS_CONTINUE;
}
static sfsistat on_body(SMFICTX *ctx, unsigned char *data, size_t len) {
    (void)ctx, (void)data, (void)len;
    return SMFIS_CONTINUE;
}
static sfsistat on_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps,
                             unsigned long f2, unsigned long f3, unsigned long *want_actions,
                             unsigned long *want_steps, unsigned long *want2,
                             unsigned long *want3) {
    (void)f2, (void)f3;
    *want_actions = actions & (SMFIF_CHGFROM | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_ADDHDRS |
                               SMFIF_CHGHDRS | SMFIF_SETSYMLIST);
    *want_steps = steps & (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA);
    *want2 = *want3 = 0;
    if (actions & SMFIF_SETSYMLIST) {
        static const int empty[] = {SMFIM_CONNECT, SMFIM_HELO, SMFIM_ENVRCPT, SMFIM_DATA,
                                    SMFIM_EOH};
        for (size_t i = 0; i < sizeof empty / sizeof empty[0]; ++i)
            smfi_setsymlist(ctx, empty[i], "");
        smfi_setsymlist(ctx, SMFIM_ENVFROM, "{auth_authen}");
        smfi_setsymlist(ctx, SMFIM_EOM, "i");
    }
    return SMFIS_CONTINUE;
}

int main(int argc, char **argv) {
    struct smfiDesc desc;
    if (argc != 2) {
        fprintf(stderr, "usage: null_libmilter inet:PORT@HOST\n");
        return 2;
    }
    memset(&desc, 0, sizeof desc);
    desc.xxfi_name = "null";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_CHGFROM | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    desc.xxfi_connect = on_connect;
    desc.xxfi_envfrom = on_args;
    desc.xxfi_envrcpt = on_args;
    desc.xxfi_header = on_header;
    desc.xxfi_eoh = on_step;
    desc.xxfi_body = on_body;
    desc.xxfi_eom = on_step;
    desc.xxfi_abort = on_step;
    desc.xxfi_close = on_step;
    desc.xxfi_negotiate = on_negotiate;
    if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) return 1;
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
