using ChunkSeg.Cli.Commands;

return await CliApp.RunAsync(args).ConfigureAwait(false);
