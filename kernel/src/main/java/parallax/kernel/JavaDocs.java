package parallax.kernel;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.SourceCodeAnalysis.Documentation;

/**
 * Inspection (Shift+Tab) for Java: finds the name around the cursor wherever it stands in
 * it ({@code Str|ing}, {@code Math.m|ax(1, 2)}), asks JShell for its documentation (every
 * overload of a method) and shows each signature with the first sentence of its javadoc,
 * as plain text and HTML. JShell reads javadoc from the JDK's lib/src.zip; without it
 * (Debian: the openjdk-17-source package) only signatures are shown.
 */
final class JavaDocs {

    private JavaDocs() {}

    /** The cell with magic lines blanked (same length), so JShell sees only the Java around them. */
    static String javaOnly(String code) {
        StringBuilder sb = new StringBuilder(code.length());
        int start = 0;
        while (start <= code.length()) {
            int end = code.indexOf('\n', start);
            if (end < 0) end = code.length();
            String line = code.substring(start, end);
            boolean magic = line.stripLeading().startsWith("%") && !line.stripLeading().startsWith("%=");
            sb.append(magic ? " ".repeat(line.length()) : line);
            if (end < code.length()) sb.append('\n');
            start = end + 1;
        }
        return sb.toString();
    }

    /** The [start, end) of the Java identifier the cursor is in or touches, or null. */
    static int[] nameAround(String code, int at) {
        at = Math.max(0, Math.min(at, code.length()));
        int start = at;
        while (start > 0 && Character.isJavaIdentifierPart(code.charAt(start - 1))) start--;
        int end = at;
        while (end < code.length() && Character.isJavaIdentifierPart(code.charAt(end))) end++;
        if (start == end || !Character.isJavaIdentifierStart(code.charAt(start))) return null;
        return new int[] {start, end};
    }

    /** JShell's documentation for what the cursor is on: a type, a field or variable, or every overload of a method. */
    static List<Documentation> lookup(SourceCodeAnalysis sca, String code, int at) {
        int[] name = nameAround(code, at);
        if (name != null) {
            int end = name[1];
            int next = end;
            while (next < code.length() && Character.isWhitespace(code.charAt(next))) next++;
            if (next < code.length() && code.charAt(next) == '(') {
                // Inside the parentheses with nothing typed JShell lists every overload.
                List<Documentation> docs = sca.documentation(code.substring(0, next + 1), next + 1, true);
                if (!docs.isEmpty()) return docs;
            }
            List<Documentation> docs = sca.documentation(code, end, true);
            if (!docs.isEmpty()) return docs;
            // A method named without its "(": show its overloads all the same.
            docs = sca.documentation(code.substring(0, end) + "(", end + 1, true);
            if (!docs.isEmpty()) return docs;
        }
        return sca.documentation(code, at, true);
    }

    /** Signatures with their javadoc summaries as text/plain and text/html; more of the javadoc with {@code detail}. */
    static DisplayData display(List<Documentation> docs, boolean detail) {
        StringBuilder text = new StringBuilder();
        StringBuilder html = new StringBuilder("<div class=\"parallax-inspect\">");
        for (Documentation d : docs) {
            text.append(d.signature()).append('\n');
            html.append("<pre>").append(Renderers.escape(d.signature())).append("</pre>");
            String javadoc = d.javadoc();
            if (javadoc == null || javadoc.isBlank()) continue;
            String body = detail ? description(javadoc) : firstSentence(javadoc);
            text.append("    ").append(plain(body).replace("\n", "\n    ")).append('\n');
            html.append("<p>").append(html(body)).append("</p>");
        }
        html.append("</div>");
        DisplayData dd = new DisplayData(text.toString().stripTrailing());
        dd.putHTML(html.toString());
        return dd;
    }

    /** The javadoc's main description: everything before the first block tag (@param, @return, ...). */
    static String description(String javadoc) {
        Matcher m = Pattern.compile("(?m)^\\s*@[a-zA-Z]+").matcher(javadoc);
        return (m.find() ? javadoc.substring(0, m.start()) : javadoc).strip();
    }

    /**
     * The summary sentence, by javadoc's rule (docs/reference.md#javadoc-summary-sentence): the
     * description up to the first period followed by white space; periods inside inline tags
     * such as {@code {@code a.b}} do not count.
     */
    static String firstSentence(String javadoc) {
        String d = description(javadoc);
        int depth = 0;
        for (int i = 0; i < d.length(); i++) {
            char c = d.charAt(i);
            if (c == '{') depth++;
            else if (c == '}' && depth > 0) depth--;
            else if (c == '.' && depth == 0 && (i + 1 == d.length() || Character.isWhitespace(d.charAt(i + 1)))) {
                return d.substring(0, i + 1);
            } else if (depth == 0 && d.startsWith("<p>", i) && i > 0) {
                return d.substring(0, i).strip();
            }
        }
        return d;
    }

    private static final Pattern INLINE_TAG = Pattern.compile("\\{@(\\w+)\\s*([^{}]*(?:\\{[^{}]*}[^{}]*)*)}");

    /** Javadoc text as HTML: inline tags become code or plain text; the HTML javadoc already has is kept. */
    static String html(String javadoc) {
        Matcher m = INLINE_TAG.matcher(javadoc);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String tag = m.group(1);
            String arg = m.group(2).strip();
            String rendered = switch (tag) {
                case "code" -> "<code>" + Renderers.escape(arg) + "</code>";
                case "literal" -> Renderers.escape(arg);
                case "link" -> "<code>" + Renderers.escape(linkText(arg)) + "</code>";
                case "linkplain", "value" -> Renderers.escape(linkText(arg));
                default -> "";
            };
            m.appendReplacement(out, Matcher.quoteReplacement(rendered));
        }
        m.appendTail(out);
        return out.toString().replaceAll("\\s+", " ").strip();
    }

    /** Javadoc text as plain text: inline tags unwrapped, HTML tags dropped, entities decoded. */
    static String plain(String javadoc) {
        Matcher m = INLINE_TAG.matcher(javadoc);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String tag = m.group(1);
            String arg = m.group(2).strip();
            String rendered = switch (tag) {
                case "code", "literal" -> arg;
                case "link", "linkplain", "value" -> linkText(arg);
                default -> "";
            };
            m.appendReplacement(out, Matcher.quoteReplacement(rendered.replace("<", "\u0000lt;").replace(">", "\u0000gt;")));
        }
        m.appendTail(out);
        String text = out.toString().replaceAll("<[^>]+>", "").replace("\u0000lt;", "<").replace("\u0000gt;", ">")
                .replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'")
                .replace("&nbsp;", " ").replace("&amp;", "&");
        return text.replaceAll("\\s+", " ").strip();
    }

    /** {@code {@link Foo#bar(int) label}} shows the label, else {@code Foo.bar(int)}. */
    private static String linkText(String arg) {
        int paren = arg.indexOf('(');
        int space = -1;
        int depth = 0;
        for (int i = 0; i < arg.length(); i++) {
            char c = arg.charAt(i);
            if (c == '(') depth++;
            else if (c == ')') depth--;
            else if (Character.isWhitespace(c) && depth == 0) {
                space = i;
                break;
            }
        }
        if (space > 0 && (paren < 0 || space > paren)) return arg.substring(space + 1).strip();
        String ref = space > 0 ? arg.substring(0, space) : arg;
        if (ref.startsWith("#")) ref = ref.substring(1);
        return ref.replace('#', '.');
    }
}
