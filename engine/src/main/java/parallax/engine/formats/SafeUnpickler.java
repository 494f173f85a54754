package parallax.engine.formats;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import parallax.engine.numerics.DType;

/**
 * A pickle reader that never runs anything. Pickle is a small stack machine whose GLOBAL
 * and REDUCE opcodes import and call any Python function named in the file: that is how
 * a checkpoint can run os.system. This reader knows only the opcodes torch.save emits
 * (pickle protocol 2, PEP 307) and resolves only the globals that rebuild tensors, like
 * torch.load(weights_only=True); any other global is refused with its name, before
 * anything else happens.
 */
final class SafeUnpickler {

    /** The only globals a tensor checkpoint needs. */
    static final Set<String> ALLOWED = Set.of(
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2",
            "torch._utils._rebuild_parameter",
            "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
            "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
            "torch.ByteStorage", "torch.BoolStorage");

    record Global(String module, String name) {
        String qualified() { return module + "." + name; }
    }

    record Tuple(List<Object> items) {}

    record Storage(DType dtype, String key, long numel) {}

    /** What _rebuild_tensor_v2 returns: a view of a storage. */
    record TensorRef(Storage storage, long offset, long[] size, long[] stride) {}

    private static final Object MARK = new Object();

    /** A checkpoint's pickle builds a few objects per tensor; more than this is a pickle bomb. */
    static final int MAX_OBJECTS = 1_000_000;
    private int objects;

    private final Path file;
    private final String where;
    private final ByteBuffer b;
    private final List<Object> stack = new ArrayList<>();
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    SafeUnpickler(Path file, String where, byte[] pickle) {
        this.file = file;
        this.where = where;
        this.b = ByteBuffer.wrap(pickle).order(ByteOrder.LITTLE_ENDIAN);
    }

    private FormatError error(String what) {
        return new FormatError(file, what + " in " + where);
    }

    private void need(int n) {
        if (b.remaining() < n) throw error("truncated pickle at byte " + b.position());
    }

    private Object pop() {
        if (stack.isEmpty() || (!marks.isEmpty() && marks.get(marks.size() - 1) >= stack.size())) {
            throw error("pickle stack underflow at byte " + b.position());
        }
        Object o = stack.remove(stack.size() - 1);
        if (o == MARK) throw error("unexpected mark at byte " + b.position());
        return o;
    }

    private Object top() {
        if (stack.isEmpty()) throw error("pickle stack underflow at byte " + b.position());
        return stack.get(stack.size() - 1);
    }

    private List<Object> popMark() {
        if (marks.isEmpty()) throw error("pickle has no mark at byte " + b.position());
        int m = marks.remove(marks.size() - 1);
        List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
        stack.subList(m, stack.size()).clear();
        return items;
    }

    private String utf8(long len) {
        if (len < 0 || len > b.remaining()) throw error("pickle string of " + len + " bytes runs past the end");
        byte[] s = new byte[(int) len];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    private String line() {
        int start = b.position();
        while (b.hasRemaining() && b.get() != '\n') {
            if (b.position() - start > 256) throw error("pickle GLOBAL name too long");
        }
        if (b.get(b.position() - 1) != '\n') throw error("truncated pickle GLOBAL");
        return new String(b.array(), start, b.position() - start - 1, StandardCharsets.UTF_8);
    }

    private Global global(String module, String name) {
        String q = module + "." + name;
        if (!ALLOWED.contains(q)) {
            throw error("forbidden pickle global " + q + " (only tensor-rebuild globals are allowed; nothing was executed)");
        }
        return new Global(module, name);
    }

    Object load() {
        while (true) {
            need(1);
            int op = b.get() & 0xff;
            if (++objects > MAX_OBJECTS * 4 || stack.size() > MAX_OBJECTS || memo.size() > MAX_OBJECTS) {
                throw error("pickle bomb: more than " + MAX_OBJECTS + " objects");
            }
            switch (op) {
                case 0x80: need(1); b.get(); break;                     // PROTO
                case 0x95: need(8); b.getLong(); break;                 // FRAME
                case '}': stack.add(new LinkedHashMap<>()); break;      // EMPTY_DICT
                case ']': stack.add(new ArrayList<>()); break;          // EMPTY_LIST
                case ')': stack.add(new Tuple(List.of())); break;       // EMPTY_TUPLE
                case '(': marks.add(stack.size()); stack.add(MARK); break; // MARK
                case 'q': need(1); memo.put((long) (b.get() & 0xff), top()); break;     // BINPUT
                case 'r': need(4); memo.put(b.getInt() & 0xffffffffL, top()); break;   // LONG_BINPUT
                case 0x94: memo.put((long) memo.size(), top()); break;                  // MEMOIZE
                case 'h': need(1); stack.add(memoGet(b.get() & 0xff)); break;           // BINGET
                case 'j': need(4); stack.add(memoGet(b.getInt() & 0xffffffffL)); break; // LONG_BINGET
                case 'X': need(4); stack.add(utf8(b.getInt() & 0xffffffffL)); break;    // BINUNICODE
                case 0x8c: need(1); stack.add(utf8(b.get() & 0xff)); break;             // SHORT_BINUNICODE
                case 0x8d: need(8); stack.add(utf8(b.getLong())); break;                // BINUNICODE8
                case 'U': need(1); stack.add(utf8(b.get() & 0xff)); break;              // SHORT_BINSTRING
                case 'T': need(4); stack.add(utf8(b.getInt() & 0xffffffffL)); break;    // BINSTRING
                case 'C': need(1); stack.add(bytes(b.get() & 0xff)); break;             // SHORT_BINBYTES
                case 'B': need(4); stack.add(bytes(b.getInt() & 0xffffffffL)); break;   // BINBYTES
                case 'c': {                                                             // GLOBAL
                    String module = line();
                    String name = line();
                    stack.add(global(module, name));
                    break;
                }
                case 0x93: {                                                            // STACK_GLOBAL
                    Object name = pop();
                    Object module = pop();
                    if (!(name instanceof String) || !(module instanceof String)) throw error("STACK_GLOBAL needs two strings");
                    stack.add(global((String) module, (String) name));
                    break;
                }
                case 'K': need(1); stack.add((long) (b.get() & 0xff)); break;           // BININT1
                case 'M': need(2); stack.add((long) (b.getShort() & 0xffff)); break;    // BININT2
                case 'J': need(4); stack.add((long) b.getInt()); break;                 // BININT
                case 0x8a: { need(1); stack.add(longN(b.get() & 0xff)); break; }       // LONG1
                case 0x8b: { need(4); stack.add(longN(b.getInt())); break; }           // LONG4
                case 'G': need(8); stack.add(Double.longBitsToDouble(Long.reverseBytes(b.getLong()))); break; // BINFLOAT (big-endian)
                case 'N': stack.add(null); break;                                      // NONE
                case 0x88: stack.add(Boolean.TRUE); break;                             // NEWTRUE
                case 0x89: stack.add(Boolean.FALSE); break;                            // NEWFALSE
                case 't': stack.add(new Tuple(popMark())); break;                      // TUPLE
                case 0x85: { Object a = pop(); stack.add(new Tuple(listOf(a))); break; }
                case 0x86: { Object c = pop(); Object a = pop(); stack.add(new Tuple(listOf(a, c))); break; }
                case 0x87: { Object d = pop(); Object c = pop(); Object a = pop(); stack.add(new Tuple(listOf(a, c, d))); break; }
                case 'l': stack.add(new ArrayList<>(popMark())); break;                // LIST
                case 'd': {                                                            // DICT
                    List<Object> kv = popMark();
                    Map<Object, Object> m = new LinkedHashMap<>();
                    for (int i = 0; i + 1 < kv.size(); i += 2) m.put(kv.get(i), kv.get(i + 1));
                    stack.add(m);
                    break;
                }
                case 'a': { Object v = pop(); list(top()).add(v); break; }              // APPEND
                case 'e': { List<Object> items = popMark(); list(top()).addAll(items); break; } // APPENDS
                case 's': { Object v = pop(); Object k = pop(); dict(top()).put(k, v); break; } // SETITEM
                case 'u': {                                                            // SETITEMS
                    List<Object> kv = popMark();
                    Map<Object, Object> m = dict(top());
                    for (int i = 0; i + 1 < kv.size(); i += 2) m.put(kv.get(i), kv.get(i + 1));
                    break;
                }
                case 'Q': stack.add(persistent(pop())); break;                        // BINPERSID
                case 'R': {                                                            // REDUCE
                    Object args = pop();
                    Object fn = pop();
                    stack.add(reduce(fn, args));
                    break;
                }
                case 'b': {                                                            // BUILD
                    Object state = pop();
                    Object obj = top();
                    if (obj instanceof Map<?, ?> m && state instanceof Map<?, ?> s) {
                        @SuppressWarnings("unchecked") Map<Object, Object> mm = (Map<Object, Object>) m;
                        mm.putAll(s);
                    } else if (!(obj instanceof TensorRef)) {
                        throw error("BUILD on a " + typeName(obj) + " is not allowed");
                    }
                    break;
                }
                case '0': pop(); break;                                                // POP
                case '2': stack.add(top()); break;                                     // DUP
                case '1': popMark(); break;                                            // POP_MARK
                case '.': return pop();                                                // STOP
                case 'i': case 'o': case 0x81: case 0x92:
                    throw error(String.format("pickle opcode 0x%02x builds arbitrary objects; refused", op));
                default:
                    throw error(String.format("unsupported pickle opcode 0x%02x at byte %d", op, b.position() - 1));
            }
        }
    }

    private static List<Object> listOf(Object... xs) {
        List<Object> l = new ArrayList<>(xs.length);
        for (Object x : xs) l.add(x);
        return l;
    }

    private byte[] bytes(long n) {
        if (n < 0 || n > b.remaining()) throw error("pickle bytes of " + n + " run past the end");
        byte[] out = new byte[(int) n];
        b.get(out);
        return out;
    }

    private Object longN(int n) {
        if (n < 0 || n > b.remaining() || n > 64) throw error("pickle LONG of " + n + " bytes is invalid");
        byte[] le = new byte[n];
        b.get(le);
        if (n == 0) return 0L;
        byte[] be = new byte[n];
        for (int i = 0; i < n; i++) be[i] = le[n - 1 - i];
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private Object memoGet(long k) {
        if (!memo.containsKey(k)) throw error("pickle memo key " + k + " was never stored");
        return memo.get(k);
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o) {
        if (o instanceof List<?> l) return (List<Object>) l;
        throw error("APPEND to a " + typeName(o));
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(Object o) {
        if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
        throw error("SETITEM on a " + typeName(o));
    }

    private static String typeName(Object o) {
        return o == null ? "None" : o instanceof Global g ? g.qualified() : o.getClass().getSimpleName();
    }

    /** torch.save's persistent id: ('storage', StorageType, key, location, numel). */
    private Object persistent(Object pid) {
        if (!(pid instanceof Tuple t) || t.items().size() < 5 || !"storage".equals(t.items().get(0))) {
            throw error("unexpected persistent id " + pid);
        }
        List<Object> x = t.items();
        if (!(x.get(1) instanceof Global g) || !(x.get(2) instanceof String key) || !(x.get(4) instanceof Long numel)) {
            throw error("malformed storage persistent id");
        }
        DType d = storageType(g.name());
        if (d == null) throw error("storage type " + g.qualified() + " is not a tensor storage");
        return new Storage(d, key, numel);
    }

    static DType storageType(String name) {
        switch (name) {
            case "FloatStorage": return DType.F32;
            case "DoubleStorage": return DType.F64;
            case "HalfStorage": return DType.F16;
            case "BFloat16Storage": return DType.BF16;
            case "LongStorage": return DType.I64;
            case "IntStorage": return DType.I32;
            case "ShortStorage": return DType.I16;
            case "CharStorage": return DType.I8;
            case "ByteStorage": return DType.U8;
            case "BoolStorage": return DType.BOOL;
            default: return null;
        }
    }

    private Object reduce(Object fn, Object args) {
        if (!(fn instanceof Global g)) throw error("REDUCE on a " + typeName(fn));
        if (!(args instanceof Tuple t)) throw error("REDUCE arguments are not a tuple");
        List<Object> a = t.items();
        switch (g.qualified()) {
            case "collections.OrderedDict":
                return new LinkedHashMap<>();
            case "torch._utils._rebuild_tensor_v2": {
                if (a.size() < 4 || !(a.get(0) instanceof Storage s) || !(a.get(1) instanceof Long off)
                        || !(a.get(2) instanceof Tuple size) || !(a.get(3) instanceof Tuple stride)) {
                    throw error("malformed _rebuild_tensor_v2 arguments");
                }
                return new TensorRef(s, off, longs(size), longs(stride));
            }
            case "torch._utils._rebuild_parameter":
                if (a.isEmpty() || !(a.get(0) instanceof TensorRef)) throw error("malformed _rebuild_parameter arguments");
                return a.get(0);
            default:
                throw error("global " + g.qualified() + " cannot be called");
        }
    }

    private long[] longs(Tuple t) {
        long[] out = new long[t.items().size()];
        for (int i = 0; i < out.length; i++) {
            if (!(t.items().get(i) instanceof Long v) || v < 0) throw error("tensor size/stride holds a non-integer");
            out[i] = v;
        }
        return out;
    }
}
