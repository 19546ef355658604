/* Memory read bandwidth on 2 threads: passes over a 256 MB buffer (or MB given as the argument), 16-lane loads.
   On a CPU with a large L3 (300 MB on Emerald Rapids) smaller buffers measure what a decoder step's working set
   (134 MB for Whisper base) can be read at: `/tmp/memory_bandwidth 128`.
   Decoder steps that stream their weights (Whisper's vocabulary projection, LLaVA's layers) are bound by it.
     clang -O2 -mavx512f scripts/bench/harness/memory_bandwidth.c -o /tmp/memory_bandwidth -lpthread
     /tmp/memory_bandwidth     (AVX-512 CPUs only) */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float *buf; static long n; static volatile float sink; static int passes = 20;
static void *run(void *arg){ long part=(long)arg; long lo=part*(n/2), hi=lo+n/2; __m512 s0=_mm512_setzero_ps(),s1=s0,s2=s0,s3=s0;
  for(int r=0;r<passes;r++) for(long i=lo;i<hi;i+=64){s0=_mm512_add_ps(s0,_mm512_load_ps(buf+i));s1=_mm512_add_ps(s1,_mm512_load_ps(buf+i+16));s2=_mm512_add_ps(s2,_mm512_load_ps(buf+i+32));s3=_mm512_add_ps(s3,_mm512_load_ps(buf+i+48));}
  sink=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0,s1),_mm512_add_ps(s2,s3))); return 0;}
int main(int argc,char**argv){ long mb=argc>1?atol(argv[1]):256; if(mb<1)mb=1; n=mb<<18; passes=(int)(5120/mb)+1; buf=aligned_alloc(64,n*4); for(long i=0;i<n;i++)buf[i]=1;
  for(int rep=0;rep<3;rep++){ pthread_t t[2]; double t0=now(); for(long i=0;i<2;i++)pthread_create(&t[i],0,run,(void*)i); for(int i=0;i<2;i++)pthread_join(t[i],0);
    printf("read bandwidth, 2 threads, %ld MB buffer: %.1f GB/s\n", mb, (double)passes*n*4/(now()-t0)/1e9);} }
