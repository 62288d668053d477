/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_placement.h"

int vs_placement__placeholder;
