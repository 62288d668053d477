/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_placement.h -- libvsplacement: PG placement as a linear program (GLPK).
 * (Being built: see the placement issue.)
 */
#ifndef VS_PLACEMENT_H
#define VS_PLACEMENT_H

#endif /* VS_PLACEMENT_H */
