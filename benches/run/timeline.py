"""Median time per hand-off of a step, from the stamps of timing.patch (see README.md).

Input: the `T <microseconds> <pid> <label>` lines of `cox run`'s stderr and of
$COX_HOME/step-host.log, merged and sorted by time. Each label is paired with the oldest
unpaired one before it in the chain (first in, first out), so with two lanes a pair may
mix two steps: read the medians, and the raw sequence for one step.
"""
import sys, collections
ev=[l.split() for l in open(sys.argv[1])]
ev=[(int(t),lab) for _,t,_,lab in ev]
chain=["host:recv","spawn:start","spawn:done","host:ran","host:joined","exec:answer","exec:outcome","actor:apply","actor:commit","actor:stored","actor:published","exec:run","exec:prepared","exec:sent","host:recv"]
pred={chain[i+1]:chain[i] for i in range(len(chain)-1)}
queues=collections.defaultdict(collections.deque)
gaps=collections.defaultdict(list)
for t,lab in ev:
    p=pred.get(lab)
    if p and queues[p]:
        gaps[(p,lab)].append(t-queues[p].popleft())
    queues[lab].append(t)
tot=0
for i in range(len(chain)-1):
    g=sorted(gaps[(chain[i],chain[i+1])])
    if not g: continue
    med=g[len(g)//2]; mean=sum(g)/len(g); tot+=med
    print(f"{chain[i]:>16} -> {chain[i+1]:<16} n={len(g):4d} median={med:6d}us mean={mean:8.0f}us")
print("sum of medians", tot)
print("wall", ev[-1][0]-ev[0][0])
