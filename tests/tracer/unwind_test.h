/* unwind_test: functions spread over files built with different flags. */
#ifndef UWT_H
#define UWT_H
typedef int uwt_fn(void);
int uwt_fp_rec(int depth, uwt_fn *leaf);   /* unwind_fp.c */
int uwt_nofp_rec(int depth, uwt_fn *leaf); /* unwind_nofp.c */
int uwt_alloca(int n, uwt_fn *leaf);
int uwt_vla(int n, uwt_fn *leaf);
int uwt_realign(int n, uwt_fn *leaf);
#endif
