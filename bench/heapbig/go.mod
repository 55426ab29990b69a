module heapbig

go 1.22
