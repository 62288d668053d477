/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The one vstor binary: OSD, monitor and client modes (see cli.h). */
#include "cli.h"

int main(int argc, char **argv)
{
    return vs_cli_main(argc, argv);
}
