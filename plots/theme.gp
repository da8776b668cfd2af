# blackhole chart theme (the same text is inlined into every chart script).
# Journal style: no top/right border, light grid behind the data, outward
# ticks, Okabe-Ito colours (distinguishable with colour-blind vision and
# paired with dash patterns and point shapes so grey-scale print works).
set encoding utf8
set border 3 front lc rgb '#404040' lw 1
set tics nomirror out scale 0.5 textcolor rgb '#202020'
set grid xtics ytics back lc rgb '#e6e6e6' lw 1 dt solid
set key noautotitle nobox opaque samplen 2.5 spacing 1.1
set datafile missing 'NA'
set style fill transparent solid 0.18 noborder
set linetype 1 lc rgb '#0072B2' lw 2 dt 1 pt 7 ps 0.9
set linetype 2 lc rgb '#D55E00' lw 2 dt 2 pt 5 ps 0.9
set linetype 3 lc rgb '#009E73' lw 2 dt 4 pt 9 ps 1.0
set linetype 4 lc rgb '#CC79A7' lw 2 dt 5 pt 11 ps 1.0
set linetype 5 lc rgb '#E69F00' lw 2 dt 3 pt 13 ps 1.0
set linetype 6 lc rgb '#56B4E9' lw 2 dt 1 pt 6 ps 0.9
set linetype 7 lc rgb '#000000' lw 2 dt 2 pt 4 ps 0.9
set linetype 8 lc rgb '#F0E442' lw 2 dt 4 pt 8 ps 1.0
set linetype cycle 8
# Reference lines (zero, true values, boundaries) and neutral fills.
bh_ref = '#555555'
bh_fill = '#9a9a9a'
# Diverging palette for correlations: blue (-1), white (0), vermillion (+1).
set palette defined (-1 '#0072B2', 0 '#ffffff', 1 '#D55E00')
