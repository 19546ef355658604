/* OpenBLAS's sgemm at one shape, C[m, n] = A[m, k] · B[n, k]ᵀ (a linear layer: rows × outputs × inputs), best
   GFLOP/s of 7 half-second runs. The ViT-B/32 shapes at batch 8 (400 rows) bound what any float32 engine
   built on sgemm does with CLIP's image tower.
     clang -O2 scripts/bench/harness/sgemm_shape.c -o /tmp/sgemm_shape -lopenblas
     OPENBLAS_NUM_THREADS=2 /tmp/sgemm_shape 400 3072 768 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int m=atoi(argv[1]),n=atoi(argv[2]),k=atoi(argv[3]);
  float*a=malloc(4L*m*k),*b=malloc(4L*k*n),*c=malloc(4L*m*n);
  for(long i=0;i<(long)m*k;i++)a[i]=(i%7)*0.1f; for(long i=0;i<(long)k*n;i++)b[i]=(i%5)*0.1f;
  double best=0;
  for(int r=0;r<7;r++){double t0=now();int it=0;while(now()-t0<0.5){cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,m,n,k,1,a,k,b,k,0,c,n);it++;}
    double g=2.0*m*n*k*it/(now()-t0)/1e9; if(g>best)best=g;}
  printf("%d x %d x %d: best %.1f GFLOP/s\n",m,n,k,best);
}
