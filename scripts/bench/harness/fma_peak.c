/* The CPU's single-precision ceiling: 12 independent 16-lane FMA chains per thread (enough to cover the FMA
   latency on Zen 3/4 and Intel cores), on 1 and then 2 threads, 3 runs each. The speed goals that compare
   Chorus with PyTorch are read against this number: neither engine can beat it in float32.
     clang -O2 -mavx512f -mfma scripts/bench/harness/fma_peak.c -o /tmp/fma_peak -lpthread && /tmp/fma_peak
   (AVX-512 CPUs only.) */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static volatile float sink;
static void *run(void *arg){
  long iters=(long)arg;
  __m512 a0=_mm512_set1_ps(1),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0,a8=a0,a9=a0,a10=a0,a11=a0;
  __m512 x=_mm512_set1_ps(0.999999f),y=_mm512_set1_ps(1e-7f);
  for(long i=0;i<iters;i++){
    a0=_mm512_fmadd_ps(a0,x,y);a1=_mm512_fmadd_ps(a1,x,y);a2=_mm512_fmadd_ps(a2,x,y);a3=_mm512_fmadd_ps(a3,x,y);
    a4=_mm512_fmadd_ps(a4,x,y);a5=_mm512_fmadd_ps(a5,x,y);a6=_mm512_fmadd_ps(a6,x,y);a7=_mm512_fmadd_ps(a7,x,y);
    a8=_mm512_fmadd_ps(a8,x,y);a9=_mm512_fmadd_ps(a9,x,y);a10=_mm512_fmadd_ps(a10,x,y);a11=_mm512_fmadd_ps(a11,x,y);
  }
  __m512 s=_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)),_mm512_add_ps(_mm512_add_ps(a4,a5),_mm512_add_ps(a6,a7)));
  s=_mm512_add_ps(s,_mm512_add_ps(_mm512_add_ps(a8,a9),_mm512_add_ps(a10,a11)));
  sink=_mm512_reduce_add_ps(s);return 0;
}
int main(){
  long iters=200000000;
  for(int threads=1;threads<=2;threads++) for(int rep=0;rep<3;rep++){
    pthread_t t[2];double t0=now();
    for(int i=0;i<threads;i++)pthread_create(&t[i],0,run,(void*)iters);
    for(int i=0;i<threads;i++)pthread_join(t[i],0);
    double dt=now()-t0;
    printf("%d thread(s): %.1f GFLOP/s total\n",threads,threads*iters*12.0*16*2/dt/1e9);
  }
}
