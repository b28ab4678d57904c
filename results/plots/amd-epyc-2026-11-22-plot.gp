# Written by qbench plot from amd-epyc-2026-11-22.json. Redraw in this directory with: gnuplot amd-epyc-2026-11-22-plot.gp

# ---- gemm ----
reset
set datafile separator "\t"
set datafile missing "-"
set label 1000 "q8 int8 GEMM throughput per ISA" at screen 0.5, screen 0.9656 center front font ",15"
set label 1001 "AMD EPYC  |  q8 0.1.0  |  s8 output, 1 thread" at screen 0.5, screen 0.9281 center front font ",11"
set key at screen 0.5, screen 0.9031 center top horizontal maxrows 1 Left reverse samplen 1.5 width 1 font ",11"
set tmargin at screen 0.8500
set ylabel "GOPS (2 ops per int8 multiply-add)"
set border 3 lw 1 lc rgb "#444444"
set grid ytics lw 1 lc rgb "#e0e0e0" dt 1
set logscale y
set grid mytics lw 1 lc rgb "#f0f0f0" dt 1
set mytics 10
set format y "%g"
set yrange [1:1753.06]
set ytics nomirror
set xrange [-0.6:10.2]
set xtics nomirror scale 0 ("1x768x768" 0, "8x3072x768" 1, "64x768x768" 2, "256x768x768" 3, "3136x64x576" 4.8, "196x256x2304" 5.8, "784x32x144" 7.6, "196x96x576" 8.6, "1x1000x1280" 9.6) rotate by 35 right
set xlabel "shape MxNxK"
set boxwidth 0.184 absolute
set style fill solid 1.0 noborder
set style textbox opaque fc rgb "#ffffff" noborder margins 1,1
set rmargin 23
set arrow 1 from graph 0, first 202.519 to graph 1, first 202.519 nohead back lw 2 dt (12,6) lc rgb "#1f77b4"
set label "avx2 peak 203 GOPS" at graph 1, graph 0.7110 left offset 1,0 front tc rgb "#1f77b4" font ",10"
set arrow 2 from graph 0, first 472.882 to graph 1, first 472.882 nohead back lw 2 dt (12,6) lc rgb "#d62728"
set label "avx512vnni peak 473 GOPS" at graph 1, graph 0.8246 left offset 1,0 front tc rgb "#d62728" font ",10"
set label "5.5" at -0.3, first 5.53842 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "77" at -0.1, first 76.5644 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "82" at 0.1, first 81.7792 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "167" at 0.3, first 167.029 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.4" at 0.7, first 6.36405 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "148" at 0.9, first 147.889 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "149" at 1.1, first 148.795 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "435" at 1.3, first 435.456 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.0" at 1.7, first 5.99488 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "146" at 1.9, first 145.91 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "150" at 2.1, first 149.542 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "439" at 2.3, first 439.091 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.9" at 2.7, first 5.86276 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "133" at 2.9, first 133.308 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "141" at 3.1, first 140.961 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "398" at 3.3, first 397.835 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.5" at 4.5, first 5.53488 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "136" at 4.7, first 135.707 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "146" at 4.9, first 145.817 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "360" at 5.1, first 360.237 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.6" at 5.5, first 5.60468 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "159" at 5.7, first 158.527 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "134" at 5.9, first 134.158 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "402" at 6.1, first 402.016 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "4.4" at 7.3, first 4.38989 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "92" at 7.5, first 92.389 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "91" at 7.7, first 91.2444 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "303" at 7.9, first 302.841 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "6.0" at 8.3, first 5.966 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "135" at 8.5, first 135.48 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "111" at 8.7, first 110.526 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "402" at 8.9, first 401.912 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "5.4" at 9.3, first 5.4472 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "82" at 9.5, first 82.264 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "81" at 9.7, first 81.387 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "165" at 9.9, first 164.818 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "transformer" at 1.5, graph 0.97 center front font ",11" tc rgb "#555555"
set arrow 3 from 3.9, graph 0 to 3.9, graph 1 nohead back lw 1 dt 3 lc rgb "#999999"
set label "resnet50" at 5.3, graph 0.97 center front font ",11" tc rgb "#555555"
set arrow 4 from 6.7, graph 0 to 6.7, graph 1 nohead back lw 1 dt 3 lc rgb "#999999"
set label "mobilenetv2" at 8.6, graph 0.97 center front font ",11" tc rgb "#555555"
set terminal pngcairo size 1091,640 font "sans,11" noenhanced background "#ffffff"
set output "amd-epyc-2026-11-22-gemm.png"
plot \
  "amd-epyc-2026-11-22-gemm.dat" using ($1-0.3):4 with boxes lc rgb "#8c8c8c" title "ref", \
  "amd-epyc-2026-11-22-gemm.dat" using ($1-0.1):5 with boxes lc rgb "#2ca02c" title "hwy", \
  "amd-epyc-2026-11-22-gemm.dat" using ($1+0.1):6 with boxes lc rgb "#1f77b4" title "avx2", \
  "amd-epyc-2026-11-22-gemm.dat" using ($1+0.3):7 with boxes lc rgb "#d62728" title "avx512vnni"
set output
set terminal svg size 1091,640 font "sans,11" noenhanced background "#ffffff"
set output "amd-epyc-2026-11-22-gemm.svg"
plot \
  "amd-epyc-2026-11-22-gemm.dat" using ($1-0.3):4 with boxes lc rgb "#8c8c8c" title "ref", \
  "amd-epyc-2026-11-22-gemm.dat" using ($1-0.1):5 with boxes lc rgb "#2ca02c" title "hwy", \
  "amd-epyc-2026-11-22-gemm.dat" using ($1+0.1):6 with boxes lc rgb "#1f77b4" title "avx2", \
  "amd-epyc-2026-11-22-gemm.dat" using ($1+0.3):7 with boxes lc rgb "#d62728" title "avx512vnni"
set output

# ---- peers ----
reset
set datafile separator "\t"
set datafile missing "-"
set label 1000 "q8 vs peer libraries, int8 GEMM   (number over a peer bar: q8 GOPS / peer GOPS; > 1: q8 faster)" at screen 0.5, screen 0.9656 center front font ",15"
set label 1001 "AMD EPYC  |  q8 0.1.0  |  s8 output, 1 thread" at screen 0.5, screen 0.9281 center front font ",11"
set key at screen 0.5, screen 0.9031 center top horizontal maxrows 1 Left reverse samplen 1.5 width 1 font ",11"
set tmargin at screen 0.8500
set ylabel "GOPS (2 ops per int8 multiply-add)"
set border 3 lw 1 lc rgb "#444444"
set grid ytics lw 1 lc rgb "#e0e0e0" dt 1
set yrange [0:535.691]
set ytics nomirror
set xrange [-0.6:10.2]
set xtics nomirror scale 0 ("1x768x768" 0, "8x3072x768" 1, "64x768x768" 2, "256x768x768" 3, "3136x64x576" 4.8, "196x256x2304" 5.8, "784x32x144" 7.6, "196x96x576" 8.6, "1x1000x1280" 9.6) rotate by 35 right
set xlabel "shape MxNxK"
set boxwidth 0.23 absolute
set style fill solid 1.0 noborder
set style textbox opaque fc rgb "#ffffff" noborder margins 1,1
set label "1.01x" at 0, first 165.319 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.66x" at 0.25, first 100.411 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.02x" at 1, first 426.467 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.98x" at 1.25, first 145.974 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.04x" at 2, first 423.987 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.88x" at 2.25, first 152.239 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.93x" at 3, first 425.61 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.64x" at 3.25, first 150.856 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.90x" at 4.8, first 401.892 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.50x" at 5.05, first 144.058 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.12x" at 5.8, first 358.615 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "3.50x" at 6.05, first 114.8 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.83x" at 7.6, first 363.552 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.16x" at 7.85, first 140.136 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "0.99x" at 8.6, first 406.973 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "2.72x" at 8.85, first 147.869 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.06x" at 9.6, first 155.196 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "1.71x" at 9.85, first 96.1815 left rotate by 90 offset 0,0.3 front boxed font ",8" tc rgb "#333333"
set label "transformer" at 1.5, graph 0.97 center front font ",11" tc rgb "#555555"
set arrow 1 from 3.9, graph 0 to 3.9, graph 1 nohead back lw 1 dt 3 lc rgb "#999999"
set label "resnet50" at 5.3, graph 0.97 center front font ",11" tc rgb "#555555"
set arrow 2 from 6.7, graph 0 to 6.7, graph 1 nohead back lw 1 dt 3 lc rgb "#999999"
set label "mobilenetv2" at 8.6, graph 0.97 center front font ",11" tc rgb "#555555"
set terminal pngcairo size 922,640 font "sans,11" noenhanced background "#ffffff"
set output "amd-epyc-2026-11-22-peers.png"
plot \
  "amd-epyc-2026-11-22-peers.dat" using ($1-0.25):4 with boxes lc rgb "#d62728" title "q8 fastest ISA (avx512vnni)", \
  "amd-epyc-2026-11-22-peers.dat" using ($1+0):5 with boxes lc rgb "#ff7f0e" title "onednn 2.6.3 (avx512_core_vnni)", \
  "amd-epyc-2026-11-22-peers.dat" using ($1+0.25):6 with boxes lc rgb "#6a3d9a" title "xnnpack 0.0~git20220216.ae108ef (avx512skx)"
set output
set terminal svg size 922,640 font "sans,11" noenhanced background "#ffffff"
set output "amd-epyc-2026-11-22-peers.svg"
plot \
  "amd-epyc-2026-11-22-peers.dat" using ($1-0.25):4 with boxes lc rgb "#d62728" title "q8 fastest ISA (avx512vnni)", \
  "amd-epyc-2026-11-22-peers.dat" using ($1+0):5 with boxes lc rgb "#ff7f0e" title "onednn 2.6.3 (avx512_core_vnni)", \
  "amd-epyc-2026-11-22-peers.dat" using ($1+0.25):6 with boxes lc rgb "#6a3d9a" title "xnnpack 0.0~git20220216.ae108ef (avx512skx)"
set output
