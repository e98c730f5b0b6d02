#!/usr/bin/env bash
# Regenerates the PDFs of this corpus that were made here (not the two
# pdfTeX manuals, which come as they are from Debian packages) and every
# golden text. Needs: python3, lualatex (texlive-luatex texlive-latex-base),
# groff + ps2pdf (groff-base, ghostscript), soffice (libreoffice-writer-nogui),
# chromium, pdftotext (poppler-utils). Inputs are the licence texts in
# /usr/share/common-licenses (base-files), whole and verbatim.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import html, re, sys
out = sys.argv[1]
def paras(path):
    t = open(path).read()
    return [' '.join(p.split()) for p in re.split(r'\n\s*\n', t) if p.strip()]
def tex(s):
    s = s.replace('\\', '\\textbackslash{}')
    for c in '&%$#_{}':
        s = s.replace(c, '\\' + c)
    return (s.replace('~', '\\textasciitilde{}').replace('^', '\\textasciicircum{}')
             .replace('"', "''").replace('<', '\\textless{}').replace('>', '\\textgreater{}'))
open(out + '/gpl3-luatex.tex', 'w').write(
    '\\documentclass[twocolumn,10pt]{article}\n\\usepackage[margin=2cm]{geometry}\n\\begin{document}\n'
    + '\n\n'.join(tex(p) for p in paras('/usr/share/common-licenses/GPL-3')) + '\n\\end{document}\n')
open(out + '/lgpl21-chromium.html', 'w').write(
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>GNU LGPL 2.1</title>\n'
    '<style>body{font-family:serif;font-size:10pt;margin:0} main{column-count:2;column-gap:2em;text-align:justify}</style>'
    '</head><body><main>\n' + '\n'.join('<p>' + html.escape(p) + '</p>' for p in paras('/usr/share/common-licenses/LGPL-2.1'))
    + '</main></body></html>\n')
ms = ['.po 1i', '.ll 6.5i', '.ps 10', '.vs 12', '.hy 1']
for p in paras('/usr/share/common-licenses/GPL-2'):
    p = p.replace('\\', '\\e')
    if p.startswith(('.', "'")):
        p = '\\&' + p
    ms += ['.sp', p]
open(out + '/gpl2-groff.ms', 'w').write('\n'.join(ms) + '\n')
PY
cp /usr/share/common-licenses/Apache-2.0 "$work/apache2-libreoffice.txt"
(cd "$work" && lualatex -interaction=nonstopmode gpl3-luatex.tex >/dev/null)
(cd "$work" && groff -Tps gpl2-groff.ms >gpl2-groff.ps && ps2pdf gpl2-groff.ps gpl2-ghostscript.pdf)
(cd "$work" && HOME="$work" soffice --headless --convert-to pdf apache2-libreoffice.txt >/dev/null)
(cd "$work" && chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
  --print-to-pdf=lgpl21-chromium.pdf lgpl21-chromium.html 2>/dev/null)
cp "$work"/{gpl3-luatex,gpl2-ghostscript,apache2-libreoffice,lgpl21-chromium}.pdf .
for f in *.pdf; do pdftotext -enc UTF-8 "$f" "${f%.pdf}.pdftotext.txt"; done
