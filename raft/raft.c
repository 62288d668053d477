/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_raft.h"

int vs_raft__placeholder;
