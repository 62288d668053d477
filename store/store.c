/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_store.h"

int vs_store__placeholder;
