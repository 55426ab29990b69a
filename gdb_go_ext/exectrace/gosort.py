"""slices.SortFunc's order, exactly: Go's pattern-defeating quicksort (not stable), so that
when the trace reader sorts its frontier of per-M cursors by time, cursors with equal
times end up in the order Go's reader tries them. Written from the algorithm's
description in Go's slices/zsortanyfunc.go (pdqsort: insertion sort up to 12 elements,
ninther pivots, partial insertion sort, heap sort past the depth limit)."""

_MASK = (1 << 64) - 1


def sort_by(data: list, key) -> None:
    """Sort data in place by key(element) (ints), in slices.SortFunc's order."""
    keys = [key(x) for x in data]
    idx = list(range(len(data)))
    _pdq(idx, keys, 0, len(idx), len(idx).bit_length())
    data[:] = [data[i] for i in idx]



def _insertion(d, keys, a, b):
    for i in range(a + 1, b):
        j = i
        while j > a and keys[d[j]] < keys[d[j - 1]]:
            d[j], d[j - 1] = d[j - 1], d[j]
            j -= 1


def _sift_down(d, keys, lo, hi, first):
    root = lo
    while True:
        child = 2 * root + 1
        if child >= hi:
            return
        if child + 1 < hi and keys[d[first + child]] < keys[d[first + child + 1]]:
            child += 1
        if not keys[d[first + root]] < keys[d[first + child]]:
            return
        d[first + root], d[first + child] = d[first + child], d[first + root]
        root = child


def _heapsort(d, keys, a, b):
    first, lo, hi = a, 0, b - a
    for i in range((hi - 1) // 2, -1, -1):
        _sift_down(d, keys, i, hi, first)
    for i in range(hi - 1, -1, -1):
        d[first], d[first + i] = d[first + i], d[first]
        _sift_down(d, keys, lo, i, first)


_UNKNOWN, _INCREASING, _DECREASING = 0, 1, 2


def _pdq(d, keys, a, b, limit):
    was_balanced = was_partitioned = True
    while True:
        length = b - a
        if length <= 12:
            _insertion(d, keys, a, b)
            return
        if limit == 0:
            _heapsort(d, keys, a, b)
            return
        if not was_balanced:
            _break_patterns(d, a, b)
            limit -= 1
        pivot, hint = _choose_pivot(d, keys, a, b)
        if hint == _DECREASING:
            i, j = a, b - 1
            while i < j:
                d[i], d[j] = d[j], d[i]
                i += 1
                j -= 1
            pivot = (b - 1) - (pivot - a)
            hint = _INCREASING
        if was_balanced and was_partitioned and hint == _INCREASING:
            if _partial_insertion(d, keys, a, b):
                return
        if a > 0 and not keys[d[a - 1]] < keys[d[pivot]]:
            a = _partition_equal(d, keys, a, b, pivot)
            continue
        mid, already = _partition(d, keys, a, b, pivot)
        was_partitioned = already
        left, right = mid - a, b - mid
        threshold = length // 8
        if left < right:
            was_balanced = left >= threshold
            _pdq(d, keys, a, mid, limit)
            a = mid + 1
        else:
            was_balanced = right >= threshold
            _pdq(d, keys, mid + 1, b, limit)
            b = mid


def _partition(d, keys, a, b, pivot):
    d[a], d[pivot] = d[pivot], d[a]
    pk = keys[d[a]]
    i, j = a + 1, b - 1
    while i <= j and keys[d[i]] < pk:
        i += 1
    while i <= j and not keys[d[j]] < pk:
        j -= 1
    if i > j:
        d[j], d[a] = d[a], d[j]
        return j, True
    d[i], d[j] = d[j], d[i]
    i += 1
    j -= 1
    while True:
        while i <= j and keys[d[i]] < pk:
            i += 1
        while i <= j and not keys[d[j]] < pk:
            j -= 1
        if i > j:
            break
        d[i], d[j] = d[j], d[i]
        i += 1
        j -= 1
    d[j], d[a] = d[a], d[j]
    return j, False


def _partition_equal(d, keys, a, b, pivot):
    d[a], d[pivot] = d[pivot], d[a]
    pk = keys[d[a]]
    i, j = a + 1, b - 1
    while True:
        while i <= j and not pk < keys[d[i]]:
            i += 1
        while i <= j and pk < keys[d[j]]:
            j -= 1
        if i > j:
            break
        d[i], d[j] = d[j], d[i]
        i += 1
        j -= 1
    return i


def _partial_insertion(d, keys, a, b):
    i = a + 1
    for _ in range(5):
        while i < b and not keys[d[i]] < keys[d[i - 1]]:
            i += 1
        if i == b:
            return True
        if b - a < 50:
            return False
        d[i], d[i - 1] = d[i - 1], d[i]
        if i - a >= 2:
            j = i - 1
            while j >= 1:
                if not keys[d[j]] < keys[d[j - 1]]:
                    break
                d[j], d[j - 1] = d[j - 1], d[j]
                j -= 1
        if b - i >= 2:
            j = i + 1
            while j < b:
                if not keys[d[j]] < keys[d[j - 1]]:
                    break
                d[j], d[j - 1] = d[j - 1], d[j]
                j += 1
    return False


def _break_patterns(d, a, b):
    length = b - a
    if length >= 8:
        r = length
        modulus = 1 << length.bit_length()
        for idx in range(a + (length // 4) * 2 - 1, a + (length // 4) * 2 + 2):
            r ^= (r << 13) & _MASK
            r ^= r >> 7
            r ^= (r << 17) & _MASK
            other = r & (modulus - 1)
            if other >= length:
                other -= length
            d[idx], d[a + other] = d[a + other], d[idx]


def _choose_pivot(d, keys, a, b):
    n = b - a
    swaps = [0]
    i, j, k = a + n // 4 * 1, a + n // 4 * 2, a + n // 4 * 3
    if n >= 8:
        if n >= 50:
            i = _median(d, keys, i - 1, i, i + 1, swaps)
            j = _median(d, keys, j - 1, j, j + 1, swaps)
            k = _median(d, keys, k - 1, k, k + 1, swaps)
        j = _median(d, keys, i, j, k, swaps)
    if swaps[0] == 0:
        return j, _INCREASING
    if swaps[0] == 12:
        return j, _DECREASING
    return j, _UNKNOWN


def _order2(d, keys, a, b, swaps):
    if keys[d[b]] < keys[d[a]]:
        swaps[0] += 1
        return b, a
    return a, b


def _median(d, keys, a, b, c, swaps):
    a, b = _order2(d, keys, a, b, swaps)
    b, c = _order2(d, keys, b, c, swaps)
    a, b = _order2(d, keys, a, b, swaps)
    return b
