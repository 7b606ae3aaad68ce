using Lucene.Net.Analysis;
using Lucene.Net.Analysis.Standard;
using Lucene.Net.Analysis.TokenAttributes;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;
using Mirage.Core.Citations;
using Mirage.Eval.Data;

namespace Mirage.Eval.Harness.Citers;

/// <summary>
/// Baseline: lexical retrieval. Each item's passages (title and text) go into an in-memory Lucene
/// index scored with BM25 (k1 = 1.2, b = 0.75); each sentence, as a bag of its analysed terms, cites
/// the single best-scoring passage, or nothing when it shares no term with any passage.
/// </summary>
public sealed class Bm25Citer : ICiter
{
    private const LuceneVersion Version = LuceneVersion.LUCENE_48;

    /// <inheritdoc />
    public string Name => "bm25";

    /// <inheritdoc />
    public Task<IReadOnlyList<int[]>> CiteAsync(AlceItem item, IReadOnlyList<SentenceSpan> sentences, CancellationToken cancellationToken = default)
    {
        using var analyzer = new StandardAnalyzer(Version);
        using var directory = new RAMDirectory();
        var similarity = new BM25Similarity();
        using (var writer = new IndexWriter(directory, new IndexWriterConfig(Version, analyzer) { Similarity = similarity }))
        {
            for (int p = 0; p < item.Docs.Count; p++)
            {
                writer.AddDocument(new Document
                {
                    new StoredField("index", p),
                    new TextField("text", $"{item.Docs[p].Title}\n{item.Docs[p].Text}", Field.Store.NO),
                });
            }
        }
        using var reader = DirectoryReader.Open(directory);
        var searcher = new IndexSearcher(reader) { Similarity = similarity };
        var cited = new List<int[]>();
        foreach (var sentence in sentences)
        {
            var query = new BooleanQuery();
            foreach (var term in Terms(analyzer, sentence.Text))
                query.Add(new TermQuery(new Term("text", term)), Occur.SHOULD);
            var hits = query.Clauses.Count == 0 ? [] : searcher.Search(query, 1).ScoreDocs;
            cited.Add(hits.Length == 0 ? [] : [searcher.Doc(hits[0].Doc).GetField("index").GetInt32Value()!.Value]);
        }
        return Task.FromResult<IReadOnlyList<int[]>>(cited);
    }

    private static List<string> Terms(Analyzer analyzer, string text)
    {
        var terms = new List<string>();
        using var stream = analyzer.GetTokenStream("text", text);
        var term = stream.AddAttribute<ICharTermAttribute>();
        stream.Reset();
        while (stream.IncrementToken())
            terms.Add(term.ToString());
        stream.End();
        return terms;
    }
}
