/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_err.h"

#include <string.h>

const char *vs_strerror(int rc)
{
    if (rc > 0)
        rc = -rc;
    if (rc == 0)
        return "success";
    switch (rc) {
#define VS_ERR_MSG(name, value, msg)                                                     \
    case value:                                                                          \
        return msg;
        VS_ERR_MAP(VS_ERR_MSG)
#undef VS_ERR_MSG
    default:
        break;
    }
    if (rc <= VS_ERR_MAX && rc >= VS_ERR_MIN)
        return "unknown vstor error";
    /* strerrordesc_np is thread-safe and never allocates (glibc >= 2.32). */
    const char *s = strerrordesc_np(-rc);
    return s ? s : "unknown error";
}

const char *vs_errname(int rc)
{
    if (rc > 0)
        rc = -rc;
    switch (rc) {
#define VS_ERR_NAME(name, value, msg)                                                    \
    case value:                                                                          \
        return #name;
        VS_ERR_MAP(VS_ERR_NAME)
#undef VS_ERR_NAME
    default:
        break;
    }
    const char *s = strerrorname_np(-rc);
    return s ? s : "E?";
}
