/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_glpk.c -- the only file that talks to GLPK: solves
 *     maximise obj . x  subject to  A x <= row_ub,  0 <= x <= col_ub
 * for a 0/1 matrix A given by columns, with the primal simplex.
 *
 * GLPK reports internal failures (out of memory, invalid arguments) through
 * its error hook and would then abort the process. We leave the hook with
 * longjmp, as GLPK's manual allows, after which the whole GLPK environment of
 * the thread must be freed (glp_free_env). No GLPK object outlives a call.
 */
#include "placement_int.h"

#include "vs_assert.h"

#include <errno.h>
#include <glpk.h>
#include <setjmp.h>
#include <stdlib.h>

static void glpk_error_hook(void *info)
{
    longjmp(*(jmp_buf *)info, 1);
}

static void load(const struct pl_lpmodel *m, glp_prob *P, int *ia, int *ja, double *ar)
{
    glp_set_obj_dir(P, GLP_MAX);
    glp_add_rows(P, (int)m->rows);
    for (uint32_t i = 0; i < m->rows; i++)
        glp_set_row_bnds(P, (int)i + 1, GLP_UP, 0, m->row_ub[i]);
    glp_add_cols(P, (int)m->cols);
    int ne = 0;
    for (uint32_t j = 0; j < m->cols; j++) {
        int col = (int)j + 1;
        if (m->col_ub[j] > 0)
            glp_set_col_bnds(P, col, GLP_DB, 0, m->col_ub[j]);
        else
            glp_set_col_bnds(P, col, GLP_FX, 0, 0);
        glp_set_obj_coef(P, col, m->obj[j]);
        for (uint32_t e = m->col_start[j]; e < m->col_start[j + 1]; e++) {
            ne++;
            ia[ne] = (int)m->row_of[e] + 1;
            ja[ne] = col;
            ar[ne] = 1;
        }
    }
    glp_load_matrix(P, ne, ia, ja, ar);
}

int placement__glpk_solve(const struct pl_lpmodel *m, double *x)
{
    if (m->cols == 0 || m->rows == 0) { /* GLPK refuses empty programs; x = 0 is optimal */
        for (uint32_t j = 0; j < m->cols; j++)
            x[j] = 0;
        return 0;
    }
    size_t ne = (size_t)m->col_start[m->cols] + 1;
    int *ia = malloc(ne * sizeof(int)), *ja = malloc(ne * sizeof(int));
    double *ar = malloc(ne * sizeof(double));
    if (!ia || !ja || !ar) {
        free(ia), free(ja), free(ar);
        return -ENOMEM;
    }
    jmp_buf jb;
    glp_prob *volatile P = NULL;
    glp_error_hook(glpk_error_hook, &jb);
    if (setjmp(jb)) {
        glp_error_hook(NULL, NULL);
        glp_free_env();
        free(ia), free(ja), free(ar);
        return -EIO;
    }
    glp_term_out(GLP_OFF);
    P = glp_create_prob();
    load(m, P, ia, ja, ar);
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    int rc = glp_simplex(P, &parm);
    int status = glp_get_status(P);
    for (uint32_t j = 0; rc == 0 && status == GLP_OPT && j < m->cols; j++)
        x[j] = glp_get_col_prim(P, (int)j + 1);
    glp_delete_prob(P);
    glp_error_hook(NULL, NULL);
    free(ia), free(ja), free(ar);
    /* x = 0 is always feasible and the bounds make the program bounded. */
    return VS_NEVER(rc != 0 || status != GLP_OPT) ? -EIO : 0;
}
