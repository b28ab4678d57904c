# Written by qbench plot from gemm-transformer-s8-zen4.json. Redraw in this directory with: gnuplot gemm-transformer-s8-zen4-plot.gp

# ---- gemm ----
reset
set datafile separator "\t"
set datafile missing "-"
set label 1000 "q8 int8 GEMM throughput per ISA" at screen 0.5, screen 0.9656 center front font ",15"
set label 1001 "AMD EPYC  |  q8 0.1.0  |  transformer suite, s8 output, 1 thread" at screen 0.5, screen 0.9281 center front font ",11"
set key at screen 0.5, screen 0.9031 center top horizontal maxrows 1 Left reverse samplen 1.5 width 1 font ",11"
set tmargin at screen 0.8500
set ylabel "GOPS (2 ops per int8 multiply-add)"
set border 3 lw 1 lc rgb "#444444"
set grid ytics lw 1 lc rgb "#e0e0e0" dt 1
set logscale y
set grid mytics lw 1 lc rgb "#f0f0f0" dt 1
set mytics 10
set format y "%g"
set yrange [1:1177.11]
set ytics nomirror
set xrange [-0.6:15.6]
set xtics nomirror scale 0 ("1x768x768" 0, "1x3072x768" 1, "1x768x3072" 2, "1x4096x4096" 3, "8x768x768" 4, "8x3072x768" 5, "8x768x3072" 6, "8x4096x4096" 7, "64x768x768" 8, "64x3072x768" 9, "64x768x3072" 10, "64x4096x4096" 11, "256x768x768" 12, "256x3072x768" 13, "256x768x3072" 14, "256x4096x4096" 15) rotate by 35 right
set xlabel "shape MxNxK"
set boxwidth 0.184 absolute
set style fill solid 1.0 noborder
set style textbox opaque fc rgb "#ffffff" noborder margins 1,1
set rmargin 23
set arrow 1 from graph 0, first 202.324 to graph 1, first 202.324 nohead back lw 2 dt (12,6) lc rgb "#1f77b4"
set label "avx2 peak 202 GOPS" at graph 1, graph 0.7510 left offset 1,0 front tc rgb "#1f77b4" font ",10"
set arrow 2 from graph 0, first 472.882 to graph 1, first 472.882 nohead back lw 2 dt (12,6) lc rgb "#d62728"
set label "avx512vnni peak 473 GOPS" at graph 1, graph 0.8710 left offset 1,0 front tc rgb "#d62728" font ",10"
set label "5.9" at -0.3, first 5.94829 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "67" at -0.1, first 67.1245 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "64" at 0.1, first 64.4396 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "169" at 0.3, first 168.837 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.8" at 0.7, first 5.84965 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "71" at 0.9, first 70.7551 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "75" at 1.1, first 75.4763 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "165" at 1.3, first 165.445 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.4" at 1.7, first 6.4065 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "87" at 1.9, first 86.8092 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "75" at 2.1, first 75.1775 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "166" at 2.3, first 165.577 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.3" at 2.7, first 6.27839 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "71" at 2.9, first 71.0549 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "67" at 3.1, first 67.323 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "100" at 3.3, first 100.295 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.0" at 3.7, first 5.04848 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "136" at 3.9, first 136.298 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "127" at 4.1, first 126.503 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "423" at 4.3, first 423.053 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.2" at 4.7, first 5.16723 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "150" at 4.9, first 150.356 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "107" at 5.1, first 107.227 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "413" at 5.3, first 413.182 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.5" at 5.7, first 5.47174 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "159" at 5.9, first 159.01 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "149" at 6.1, first 149.197 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "427" at 6.3, first 427.382 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "4.9" at 6.7, first 4.94797 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "108" at 6.9, first 107.703 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "88" at 7.1, first 88.2391 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "208" at 7.3, first 207.988 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.1" at 7.7, first 6.05773 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "143" at 7.9, first 142.819 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "142" at 8.1, first 142.205 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "409" at 8.3, first 409.474 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.2" at 8.7, first 5.17033 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "145" at 8.9, first 145.108 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "149" at 9.1, first 148.931 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "429" at 9.3, first 429.402 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.2" at 9.7, first 6.23337 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "150" at 9.9, first 149.674 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "114" at 10.1, first 113.738 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "421" at 10.3, first 421.447 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.5" at 10.7, first 5.48731 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "147" at 10.9, first 147.166 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "149" at 11.1, first 149.127 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "385" at 11.3, first 384.955 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.4" at 11.7, first 6.39873 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "150" at 11.9, first 149.95 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "152" at 12.1, first 152.212 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "414" at 12.3, first 413.532 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.1" at 12.7, first 6.0519 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "145" at 12.9, first 145.146 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "118" at 13.1, first 117.706 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "399" at 13.3, first 399.413 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.0" at 13.7, first 5.03285 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "134" at 13.9, first 133.947 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "114" at 14.1, first 113.55 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "385" at 14.3, first 384.89 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.7" at 14.7, first 5.72302 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "140" at 14.9, first 140.124 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "132" at 15.1, first 132.256 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "390" at 15.3, first 390.229 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set terminal pngcairo size 1556,640 font "sans,11" noenhanced background "#ffffff"
set output "gemm-transformer-s8-zen4-gemm.png"
plot \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1-0.3):4 with boxes lc rgb "#8c8c8c" title "ref", \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1-0.1):5 with boxes lc rgb "#2ca02c" title "hwy", \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1+0.1):6 with boxes lc rgb "#1f77b4" title "avx2", \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1+0.3):7 with boxes lc rgb "#d62728" title "avx512vnni"
set output
set terminal svg size 1556,640 font "sans,11" noenhanced background "#ffffff"
set output "gemm-transformer-s8-zen4-gemm.svg"
plot \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1-0.3):4 with boxes lc rgb "#8c8c8c" title "ref", \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1-0.1):5 with boxes lc rgb "#2ca02c" title "hwy", \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1+0.1):6 with boxes lc rgb "#1f77b4" title "avx2", \
  "gemm-transformer-s8-zen4-gemm.dat" using ($1+0.3):7 with boxes lc rgb "#d62728" title "avx512vnni"
set output

# ---- peers ----
reset
set datafile separator "\t"
set datafile missing "-"
set label 1000 "q8 vs peer libraries, int8 GEMM   (number over a peer bar: q8 GOPS / peer GOPS; > 1: q8 faster)" at screen 0.5, screen 0.9656 center front font ",15"
set label 1001 "AMD EPYC  |  q8 0.1.0  |  transformer suite, s8 output, 1 thread" at screen 0.5, screen 0.9281 center front font ",11"
set key at screen 0.5, screen 0.9031 center top horizontal maxrows 1 Left reverse samplen 1.5 width 1 font ",11"
set tmargin at screen 0.8500
set ylabel "GOPS (2 ops per int8 multiply-add)"
set border 3 lw 1 lc rgb "#444444"
set grid ytics lw 1 lc rgb "#e0e0e0" dt 1
set yrange [0:517.806]
set ytics nomirror
set xrange [-0.6:15.6]
set xtics nomirror scale 0 ("1x768x768" 0, "1x3072x768" 1, "1x768x3072" 2, "1x4096x4096" 3, "8x768x768" 4, "8x3072x768" 5, "8x768x3072" 6, "8x4096x4096" 7, "64x768x768" 8, "64x3072x768" 9, "64x768x3072" 10, "64x4096x4096" 11, "256x768x768" 12, "256x3072x768" 13, "256x768x3072" 14, "256x4096x4096" 15) rotate by 35 right
set xlabel "shape MxNxK"
set boxwidth 0.23 absolute
set style fill solid 1.0 noborder
set style textbox opaque fc rgb "#ffffff" noborder margins 1,1
set label "1.21x" at 0, first 139.839 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.73x" at 0.25, first 97.6556 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.27x" at 1, first 130.734 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.66x" at 1.25, first 99.4029 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.02x" at 2, first 161.943 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.65x" at 2.25, first 100.274 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.20x" at 3, first 83.6907 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.30x" at 3.25, first 77.329 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.01x" at 4, first 417.402 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.76x" at 4.25, first 153.038 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.02x" at 5, first 404.39 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.76x" at 5.25, first 149.562 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.01x" at 6, first 421.656 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.87x" at 6.25, first 149.096 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.57x" at 7, first 363.215 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.72x" at 7.25, first 120.589 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.98x" at 8, first 417.226 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.68x" at 8.25, first 152.753 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.01x" at 9, first 425.443 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.84x" at 9.25, first 151.331 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.94x" at 10, first 450.266 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.84x" at 10.25, first 148.594 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.90x" at 11, first 426.014 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "3.01x" at 11.25, first 127.897 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.97x" at 12, first 424.494 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.74x" at 12.25, first 150.964 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.98x" at 13, first 406.967 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.69x" at 13.25, first 148.316 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.90x" at 14, first 428.476 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.60x" at 14.25, first 147.99 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.96x" at 15, first 406.27 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "3.37x" at 15.25, first 115.809 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set terminal pngcairo size 1300,640 font "sans,11" noenhanced background "#ffffff"
set output "gemm-transformer-s8-zen4-peers.png"
plot \
  "gemm-transformer-s8-zen4-peers.dat" using ($1-0.25):4 with boxes lc rgb "#d62728" title "q8 fastest ISA (avx512vnni)", \
  "gemm-transformer-s8-zen4-peers.dat" using ($1+0):5 with boxes lc rgb "#ff7f0e" title "onednn 2.6.3 (avx512_core_vnni)", \
  "gemm-transformer-s8-zen4-peers.dat" using ($1+0.25):6 with boxes lc rgb "#6a3d9a" title "xnnpack 0.0~git20220216.ae108ef (avx512skx)"
set output
set terminal svg size 1300,640 font "sans,11" noenhanced background "#ffffff"
set output "gemm-transformer-s8-zen4-peers.svg"
plot \
  "gemm-transformer-s8-zen4-peers.dat" using ($1-0.25):4 with boxes lc rgb "#d62728" title "q8 fastest ISA (avx512vnni)", \
  "gemm-transformer-s8-zen4-peers.dat" using ($1+0):5 with boxes lc rgb "#ff7f0e" title "onednn 2.6.3 (avx512_core_vnni)", \
  "gemm-transformer-s8-zen4-peers.dat" using ($1+0.25):6 with boxes lc rgb "#6a3d9a" title "xnnpack 0.0~git20220216.ae108ef (avx512skx)"
set output
