# written by shmring-bench (2026-12-06T18:02:48+0000); run in this folder: gnuplot plots.gp

reset
set terminal svg size 960,600 dynamic font 'sans,12' background rgb 'white'
set output 'throughput-vs-size.svg'
set title "records/s vs record size, 1 producer x 1 consumer (AMD EPYC)"
set grid
set key outside right top
set datafile missing 'NaN'
set logscale xy
set format y '%.0s%c'
set xlabel 'record size'
set ylabel 'records/s'
plot 'throughput-vs-size.dat' using 1:($3):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb 'black' title "floor: memcpy", \
     'throughput-vs-size.dat' using 1:($5):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#999999' title "ref: bare SPSC", \
     'throughput-vs-size.dat' using 1:($7):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title "shmring", \
     'throughput-vs-size.dat' using 1:($9):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#17becf' title "shmring-zc", \
     'throughput-vs-size.dat' using 1:($11):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#2ca02c' title "shmring-batch", \
     'throughput-vs-size.dat' using 1:($13):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d62728' title "pipe", \
     'throughput-vs-size.dat' using 1:($15):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#ff7f0e' title "seqpacket", \
     'throughput-vs-size.dat' using 1:($17):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9467bd' title "mq", \
     'throughput-vs-size.dat' using 1:($19):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#8c564b' title "mutex-ring", \
     'throughput-vs-size.dat' using 1:($21):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e377c2' title "wfcqueue", \
     'throughput-vs-size.dat' using 1:($23):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#7f7f7f' title "shmring-light", \
     'throughput-vs-size.dat' using 1:($25):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#7f7f7f' title "shmring-inline"

reset
set terminal svg size 960,600 dynamic font 'sans,12' background rgb 'white'
set output 'throughput-vs-size-bytes.svg'
set title "MB/s vs record size, 1 producer x 1 consumer (AMD EPYC)"
set grid
set key outside right top
set datafile missing 'NaN'
set logscale xy
set format y '%.0s%c'
set xlabel 'record size'
set ylabel 'MB/s'
plot 'throughput-vs-size.dat' using 1:($4/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb 'black' title "floor: memcpy", \
     'throughput-vs-size.dat' using 1:($6/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#999999' title "ref: bare SPSC", \
     'throughput-vs-size.dat' using 1:($8/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title "shmring", \
     'throughput-vs-size.dat' using 1:($10/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#17becf' title "shmring-zc", \
     'throughput-vs-size.dat' using 1:($12/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#2ca02c' title "shmring-batch", \
     'throughput-vs-size.dat' using 1:($14/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d62728' title "pipe", \
     'throughput-vs-size.dat' using 1:($16/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#ff7f0e' title "seqpacket", \
     'throughput-vs-size.dat' using 1:($18/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9467bd' title "mq", \
     'throughput-vs-size.dat' using 1:($20/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#8c564b' title "mutex-ring", \
     'throughput-vs-size.dat' using 1:($22/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e377c2' title "wfcqueue", \
     'throughput-vs-size.dat' using 1:($24/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#7f7f7f' title "shmring-light", \
     'throughput-vs-size.dat' using 1:($26/1e6):xtic(2) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#7f7f7f' title "shmring-inline"

reset
set terminal svg size 960,600 dynamic font 'sans,12' background rgb 'white'
set output 'throughput-vs-procs.svg'
set title "records/s vs producers x consumers, 64 B records, 2 CPUs (AMD EPYC)"
set grid
set key outside right top
set datafile missing 'NaN'
set logscale y
set format y '%.0s%c'
set xlabel 'producers x consumers'
set ylabel 'records/s'
set xrange [-0.5:4.5]
plot 'throughput-vs-procs.dat' using 0:4:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title "shmring", \
     'throughput-vs-procs.dat' using 0:5:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#17becf' title "shmring-zc", \
     'throughput-vs-procs.dat' using 0:6:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#2ca02c' title "shmring-batch", \
     'throughput-vs-procs.dat' using 0:7:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#d62728' title "pipe", \
     'throughput-vs-procs.dat' using 0:8:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#ff7f0e' title "seqpacket", \
     'throughput-vs-procs.dat' using 0:9:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#9467bd' title "mq", \
     'throughput-vs-procs.dat' using 0:10:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#8c564b' title "mutex-ring", \
     'throughput-vs-procs.dat' using 0:11:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#e377c2' title "wfcqueue", \
     'throughput-vs-procs.dat' using 0:12:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#7f7f7f' title "shmring-light", \
     'throughput-vs-procs.dat' using 0:13:xtic(1) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#7f7f7f' title "shmring-inline"

reset
set terminal svg size 960,600 dynamic font 'sans,12' background rgb 'white'
set output 'latency-cdf-paced.svg'
set title "latency distribution: paced one-way, from the intended send time (AMD EPYC)"
set grid
set key outside right top
set datafile missing 'NaN'
set logscale xy
set xlabel 'latency'
set ylabel 'percentile'
set xtics ('10 ns' 10, '100 ns' 100, '1 us' 1e3, '10 us' 1e4, '100 us' 1e5, '1 ms' 1e6, '10 ms' 1e7, '100 ms' 1e8, '1 s' 1e9)
set ytics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
set yrange [1:*]
plot 'latency-cdf-paced-shmring.dat' using 1:3 with steps lw 2 lc rgb '#1f77b4' title "shmring", \
     'latency-cdf-paced-shmring-zc.dat' using 1:3 with steps lw 2 lc rgb '#17becf' title "shmring-zc", \
     'latency-cdf-paced-shmring-batch.dat' using 1:3 with steps lw 2 lc rgb '#2ca02c' title "shmring-batch", \
     'latency-cdf-paced-pipe.dat' using 1:3 with steps lw 2 lc rgb '#d62728' title "pipe", \
     'latency-cdf-paced-seqpacket.dat' using 1:3 with steps lw 2 lc rgb '#ff7f0e' title "seqpacket", \
     'latency-cdf-paced-mq.dat' using 1:3 with steps lw 2 lc rgb '#9467bd' title "mq", \
     'latency-cdf-paced-mutex-ring.dat' using 1:3 with steps lw 2 lc rgb '#8c564b' title "mutex-ring", \
     'latency-cdf-paced-wfcqueue.dat' using 1:3 with steps lw 2 lc rgb '#e377c2' title "wfcqueue"

reset
set terminal svg size 960,600 dynamic font 'sans,12' background rgb 'white'
set output 'latency-cdf-pingpong-spin.svg'
set title "latency distribution: spinning ping-pong, one-way (AMD EPYC)"
set grid
set key outside right top
set datafile missing 'NaN'
set logscale xy
set xlabel 'latency'
set ylabel 'percentile'
set xtics ('10 ns' 10, '100 ns' 100, '1 us' 1e3, '10 us' 1e4, '100 us' 1e5, '1 ms' 1e6, '10 ms' 1e7, '100 ms' 1e8, '1 s' 1e9)
set ytics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
set yrange [1:*]
plot 'latency-cdf-pingpong-spin-floor.dat' using 1:3 with steps lw 2 lc rgb 'black' title "floor: cache line", \
     'latency-cdf-pingpong-spin-shmring.dat' using 1:3 with steps lw 2 lc rgb '#1f77b4' title "shmring", \
     'latency-cdf-pingpong-spin-shmring-inline.dat' using 1:3 with steps lw 2 lc rgb '#7f7f7f' title "shmring-inline", \
     'latency-cdf-pingpong-spin-floor.dat' using 1:3 with steps lw 2 lc rgb 'black' title "floor: cache line", \
     'latency-cdf-pingpong-spin-shmring.dat' using 1:3 with steps lw 2 lc rgb '#1f77b4' title "shmring", \
     'latency-cdf-pingpong-spin-shmring-zc.dat' using 1:3 with steps lw 2 lc rgb '#17becf' title "shmring-zc", \
     'latency-cdf-pingpong-spin-shmring-batch.dat' using 1:3 with steps lw 2 lc rgb '#2ca02c' title "shmring-batch", \
     'latency-cdf-pingpong-spin-pipe.dat' using 1:3 with steps lw 2 lc rgb '#d62728' title "pipe", \
     'latency-cdf-pingpong-spin-seqpacket.dat' using 1:3 with steps lw 2 lc rgb '#ff7f0e' title "seqpacket", \
     'latency-cdf-pingpong-spin-mq.dat' using 1:3 with steps lw 2 lc rgb '#9467bd' title "mq", \
     'latency-cdf-pingpong-spin-mutex-ring.dat' using 1:3 with steps lw 2 lc rgb '#8c564b' title "mutex-ring", \
     'latency-cdf-pingpong-spin-wfcqueue.dat' using 1:3 with steps lw 2 lc rgb '#e377c2' title "wfcqueue", \
     'latency-cdf-pingpong-spin-ref-padded-floor.dat' using 1:3 with steps lw 2 lc rgb '#7f7f7f' title "ref: padded floor"

reset
set terminal svg size 960,600 dynamic font 'sans,12' background rgb 'white'
set output 'latency-cdf-pingpong-block.svg'
set title "latency distribution: blocking ping-pong, one-way (AMD EPYC)"
set grid
set key outside right top
set datafile missing 'NaN'
set logscale xy
set xlabel 'latency'
set ylabel 'percentile'
set xtics ('10 ns' 10, '100 ns' 100, '1 us' 1e3, '10 us' 1e4, '100 us' 1e5, '1 ms' 1e6, '10 ms' 1e7, '100 ms' 1e8, '1 s' 1e9)
set ytics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
set yrange [1:*]
plot 'latency-cdf-pingpong-block-floor.dat' using 1:3 with steps lw 2 lc rgb 'black' title "floor: cache line", \
     'latency-cdf-pingpong-block-shmring.dat' using 1:3 with steps lw 2 lc rgb '#1f77b4' title "shmring", \
     'latency-cdf-pingpong-block-shmring-zc.dat' using 1:3 with steps lw 2 lc rgb '#17becf' title "shmring-zc", \
     'latency-cdf-pingpong-block-shmring-batch.dat' using 1:3 with steps lw 2 lc rgb '#2ca02c' title "shmring-batch", \
     'latency-cdf-pingpong-block-pipe.dat' using 1:3 with steps lw 2 lc rgb '#d62728' title "pipe", \
     'latency-cdf-pingpong-block-seqpacket.dat' using 1:3 with steps lw 2 lc rgb '#ff7f0e' title "seqpacket", \
     'latency-cdf-pingpong-block-mq.dat' using 1:3 with steps lw 2 lc rgb '#9467bd' title "mq", \
     'latency-cdf-pingpong-block-mutex-ring.dat' using 1:3 with steps lw 2 lc rgb '#8c564b' title "mutex-ring", \
     'latency-cdf-pingpong-block-wfcqueue.dat' using 1:3 with steps lw 2 lc rgb '#e377c2' title "wfcqueue", \
     'latency-cdf-pingpong-block-floor.dat' using 1:3 with steps lw 2 lc rgb 'black' title "floor: cache line", \
     'latency-cdf-pingpong-block-shmring-efd.dat' using 1:3 with steps lw 2 lc rgb '#7f7f7f' title "shmring-efd", \
     'latency-cdf-pingpong-block-shmring-efd-direct.dat' using 1:3 with steps lw 2 lc rgb '#7f7f7f' title "shmring-efd-direct", \
     'latency-cdf-pingpong-block-seqpacket-epoll.dat' using 1:3 with steps lw 2 lc rgb '#7f7f7f' title "seqpacket-epoll"
